"""``python -m sb3_mario.export IN.zip OUT.zip``: a DDQN zip that loads with plain SB3, without sb3_mario.

``--slim`` writes a small zip for sharing a trained agent instead (:func:`slim_for_inference`): weights in
float16, the target net a copy of the online net, no Adam moments; ``DDQN.load`` reads it as usual.

A DDQN zip names sb3_mario classes (policy, features extractor, replay buffer); cloudpickle then fails to load it
where sb3_mario is not installed. Because :class:`~sb3_mario.MarioCNN` is layer for layer SB3's ``NatureCNN``, the
export only swaps those references for SB3's own classes; the weights are copied unchanged, so
``stable_baselines3.DQN.load(OUT.zip)`` predicts the same actions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import cloudpickle
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.save_util import load_from_zip_file, save_to_zip_file
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.dqn.policies import CnnPolicy, DQNPolicy, MlpPolicy, MultiInputPolicy

from sb3_mario._io import atomic_path
from sb3_mario.ddqn.policies import MarioCNN
from sb3_mario.errors import Sb3MarioError, print_error

_SB3_POLICIES: dict[str, type[DQNPolicy]] = {
    "CnnPolicy": CnnPolicy,
    "MlpPolicy": MlpPolicy,
    "MultiInputPolicy": MultiInputPolicy,
    "DQNPolicy": DQNPolicy,
}


def _mentions_sb3_mario(value: Any) -> bool:
    try:
        return b"sb3_mario" in cloudpickle.dumps(value)
    except Exception:
        return True


def export_to_sb3(in_path: str | Path, out_path: str | Path) -> list[str]:
    """Write ``out_path``, a copy of the model zip ``in_path`` that needs only stable-baselines3 to load.

    :return: the names of the saved attributes that were dropped because only sb3_mario could load them
    """
    data, params, pytorch_variables = load_from_zip_file(in_path, device="cpu")
    if data is None or "policy_class" not in data:
        raise Sb3MarioError(f"{in_path}: not an SB3 model zip (no policy_class)")
    policy_name = data["policy_class"].__name__
    if policy_name not in _SB3_POLICIES:
        raise Sb3MarioError(f"{in_path}: policy {data['policy_class']!r} has no stable-baselines3 equivalent")
    data["policy_class"] = _SB3_POLICIES[policy_name]
    policy_kwargs = dict(data.get("policy_kwargs") or {})
    if policy_kwargs.pop("dueling", False):
        raise Sb3MarioError(f"{in_path}: a dueling head has no stable-baselines3 equivalent (DQN's QNetwork has one stream)")
    extractor = policy_kwargs.get("features_extractor_class")
    if isinstance(extractor, type) and issubclass(extractor, MarioCNN):
        policy_kwargs["features_extractor_class"] = NatureCNN
    data["policy_kwargs"] = policy_kwargs
    data["replay_buffer_class"] = ReplayBuffer
    data["replay_buffer_kwargs"] = {}
    # the online weights of a weight-averaged model (ema_decay) are for resuming with sb3_mario: plain SB3 acts with
    # the average, which is the zip's q_net
    dropped = [key for key, value in data.items() if _mentions_sb3_mario(value) or key == "online_q_net"]
    for key in dropped:
        del data[key]
    with atomic_path(out_path) as tmp:
        save_to_zip_file(tmp, data=data, params=params, pytorch_variables=pytorch_variables)
    return dropped


def slim_for_inference(in_path: str | Path, out_path: str | Path) -> None:
    """Write ``out_path``, a copy of the model zip ``in_path`` for acting, about an eighth of its size.

    The online net's weights are stored in float16 (``load_state_dict`` casts them back to float32), the target net
    as the same tensors and the optimizer without its moments; settings, ``mario_env`` and counters stay. The greedy
    actions can differ from the original's where two Q-values tie within float16 rounding, so check the result
    (``python -m sb3_mario.enjoy``). Continue training from the run folder, not from a slim zip.
    """
    data, loaded, pytorch_variables = load_from_zip_file(in_path, device="cpu")
    params: dict[str, Any] = dict(loaded)  # state dicts by name
    if data is None or "policy" not in params or "policy.optimizer" not in params:
        raise Sb3MarioError(f"{in_path}: not a DQN-family SB3 model zip (no policy weights and optimizer)")
    policy = params["policy"]
    online = {key[len("q_net.") :]: value for key, value in policy.items() if key.startswith("q_net.")}
    target = {key[len("q_net_target.") :] for key in policy if key.startswith("q_net_target.")}
    if not online or set(online) != target or len(policy) != 2 * len(online):
        raise Sb3MarioError(f"{in_path}: expected a DQN policy made of q_net and q_net_target")
    half = {key: value.half() if value.is_floating_point() else value for key, value in online.items()}
    params["policy"] = {f"{net}.{key}": value for net in ("q_net", "q_net_target") for key, value in half.items()}
    params["policy.optimizer"] = {**params["policy.optimizer"], "state": {}}
    for key in ("_last_obs", "_last_original_obs", "_last_episode_starts", "online_q_net"):  # acting needs none
        data.pop(key, None)
    with atomic_path(out_path) as tmp:
        save_to_zip_file(tmp, data=data, params=params, pytorch_variables=pytorch_variables)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_mario.export", description="Write a copy of a DDQN zip that loads with plain stable-baselines3."
    )
    parser.add_argument("input", help="model zip saved by sb3_mario")
    parser.add_argument("output", help="where to write the SB3-only zip")
    parser.add_argument(
        "--slim", action="store_true", help="write a small zip for acting instead (float16 weights, no Adam moments)"
    )
    args = parser.parse_args(argv)
    if not Path(args.input).is_file():
        return print_error(f"{args.input}: no such file")
    try:
        if args.slim:
            slim_for_inference(args.input, args.output)
        else:
            dropped = export_to_sb3(args.input, args.output)
    except Exception as exc:  # a damaged zip, a model of another kind: one line, exit 2
        return print_error(f"cannot export {args.input}: {exc}")
    if args.slim:
        size = Path(args.output).stat().st_size / 2**20
        print(f"wrote {args.output} ({size:.1f} MB, for acting: DDQN.load / enjoy)")
        return 0
    print(f"wrote {args.output} (loads with stable_baselines3.DQN.load)")
    if dropped:
        print(f"dropped sb3_mario-only attributes: {', '.join(sorted(dropped))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
