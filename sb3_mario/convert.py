"""``python -m sb3_mario.convert CHECKPOINT OUT.zip``: import a checkpoint of the PyTorch Mario tutorial.

The tutorial saves ``torch.save(dict(model=MarioNet.state_dict(), exploration_rate=...))`` where ``MarioNet`` has
``online`` and ``target`` ``nn.Sequential`` networks (conv 8/4, conv 4/2, conv 3/1, Linear(3136, 512),
Linear(512, n_actions)). The result is a DDQN zip with the same weights and exploration rate. The tutorial feeds
frames scaled to [0, 1]; SB3 divides uint8 frames by 255, so the converted model gives the same Q-values.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch as th

from sb3_mario._io import atomic_path
from sb3_mario.ddqn import DDQN
from sb3_mario.envs import ACTION_SETS, make_mario_env
from sb3_mario.errors import Sb3MarioError, print_error

# tutorial nn.Sequential index -> SB3 QNetwork parameter prefix
_LAYER_MAP = {
    "0": "features_extractor.cnn.0",
    "2": "features_extractor.cnn.2",
    "4": "features_extractor.cnn.4",
    "7": "features_extractor.linear.0",
    "9": "q_net.0",
}
_EXPECTED = (
    "a torch.save()d dict with 'model' (MarioNet.state_dict(): online.{0,2,4,7,9} and target.{0,2,4,7,9} "
    "weights and biases) and 'exploration_rate'"
)


def tutorial_state_to_sb3(state: dict[str, th.Tensor]) -> dict[str, th.Tensor]:
    """Map ``MarioNet`` parameter names (``online.0.weight`` ...) to SB3 DQN policy names (``q_net.features_...``)."""
    out = {}
    for net, sb3_net in (("online", "q_net"), ("target", "q_net_target")):
        for index, prefix in _LAYER_MAP.items():
            for kind in ("weight", "bias"):
                key = f"{net}.{index}.{kind}"
                if key not in state:
                    raise Sb3MarioError(f"missing {key!r}: expected {_EXPECTED}")
                out[f"{sb3_net}.{prefix}.{kind}"] = state[key]
    extra = set(state) - {f"{n}.{i}.{k}" for n in ("online", "target") for i in _LAYER_MAP for k in ("weight", "bias")}
    if extra:
        raise Sb3MarioError(f"unexpected parameters {sorted(extra)[:3]}: expected {_EXPECTED}")
    return out


def load_tutorial_checkpoint(path: str | Path) -> tuple[dict[str, th.Tensor], float]:
    """Read a tutorial checkpoint; return its state dict and exploration rate."""
    try:
        checkpoint: Any = th.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise Sb3MarioError(f"{path}: cannot read as a torch checkpoint ({type(exc).__name__}); expected {_EXPECTED}") from exc
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "exploration_rate" not in checkpoint:
        raise Sb3MarioError(f"{path}: expected {_EXPECTED}")
    return checkpoint["model"], float(checkpoint["exploration_rate"])


def convert_checkpoint(
    checkpoint: str | Path,
    out_path: str | Path,
    env_id: str = "SuperMarioBros-1-1-v0",
    actions: str | None = None,
    **ddqn_kwargs: Any,
) -> DDQN:
    """Build a DDQN with the tutorial checkpoint's weights and exploration rate and save it to ``out_path``.

    :param checkpoint: the tutorial's ``.chkpt`` file
    :param out_path: the zip to write
    :param env_id: env the model is for (sets the observation and action spaces)
    :param actions: action-set name; by default the named set whose size matches the checkpoint's output layer
        (2: ``tutorial``)
    :param ddqn_kwargs: further DDQN constructor arguments (the tutorial's defaults otherwise)
    """
    state, exploration_rate = load_tutorial_checkpoint(checkpoint)
    sb3_state = tutorial_state_to_sb3(state)
    n_actions = sb3_state["q_net.q_net.0.weight"].shape[0]
    in_channels = sb3_state["q_net.features_extractor.cnn.0.weight"].shape[1]
    if actions is None:
        matches = [name for name, combos in ACTION_SETS.items() if len(combos) == n_actions]
        if not matches:
            raise Sb3MarioError(f"the checkpoint has {n_actions} actions; pass actions= (no named set has that many)")
        actions = matches[0]
    env = make_mario_env(env_id, actions=actions, frame_stack=in_channels)
    if env.action_space.n != n_actions:  # type: ignore[attr-defined]
        raise Sb3MarioError(f"action set {actions!r} has {env.action_space.n} actions, the checkpoint {n_actions}")  # type: ignore[attr-defined]
    model = DDQN("CnnPolicy", env, exploration_initial_eps=exploration_rate, **ddqn_kwargs)
    missing, unexpected = model.policy.load_state_dict(sb3_state, strict=True)
    assert not missing and not unexpected
    env.close()
    with atomic_path(out_path) as tmp:
        model.save(tmp)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_mario.convert", description="Convert a PyTorch Mario tutorial checkpoint to a DDQN zip."
    )
    parser.add_argument("checkpoint", help="the tutorial's mario_net_N.chkpt")
    parser.add_argument("output", help="DDQN zip to write")
    parser.add_argument("--env", default="SuperMarioBros-1-1-v0", help="env id the model plays (default: %(default)s)")
    parser.add_argument("--actions", default=None, help="action-set name (default: guessed from the output layer)")
    args = parser.parse_args(argv)
    if not Path(args.checkpoint).is_file():
        return print_error(f"{args.checkpoint}: no such file")
    try:
        model = convert_checkpoint(args.checkpoint, args.output, env_id=args.env, actions=args.actions)
    except Sb3MarioError as exc:
        return print_error(exc)
    print(f"wrote {args.output} (exploration rate {model.exploration_rate:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
