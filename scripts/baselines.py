"""The policies a Mario result has to beat, scored under the evaluation protocol.

Every constant policy of an action set (with and without ``repeat_jump``) and open-loop hop cycles ((k-1) x the
jump action then the run action, repeated), as a Markdown table for the results lab book::

    python scripts/baselines.py --env SuperMarioBros-1-2-v0 --episodes 10

Given model zips (the candidates of a run), it scores them first, then the constants and hop cycles in their env
settings, all on the same episodes, each with its 95 % (Wilson) interval, its greedy action shares and one episode
without sticky actions or no-op starts (deterministic: every such episode is the same)::

    python scripts/baselines.py run1/best_model.zip run2/best_model.zip --episodes 100 --hop-cycles 2,3,4,5,6,7,8

Kept out of the package: it is a lab-book tool, not a library feature; the policies need no network, only SB3's
``predict`` shape that :func:`sb3_mario.evaluation.evaluate_protocol` plays.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
import yaml

from sb3_mario.enjoy import play
from sb3_mario.envs import resolve_actions
from sb3_mario.envs.backend import check_env_id
from sb3_mario.errors import Sb3MarioError, print_error
from sb3_mario.evaluation import ProtocolResult, default_workers, evaluate_protocol, protocol_env_kwargs
from sb3_mario.experiment import HELD_OUT_SEED


class Constant:
    """Always the same action."""

    def __init__(self, action: int) -> None:
        self.action = action

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return np.array(self.action), None


class HopCycle:
    """``k - 1`` steps of ``jump`` then one of ``run``, repeated from each episode's first step (open loop)."""

    def __init__(self, k: int, jump: int, run: int) -> None:
        self.k, self.jump, self.run, self.t = k, jump, run, 0

    def reset(self) -> None:
        self.t = 0

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[np.ndarray, None]:
        action = self.run if self.t % self.k == self.k - 1 else self.jump
        self.t += 1
        return np.array(action), None


def score(policy: Constant | HopCycle, env_kwargs: dict[str, Any], episodes: int, seed: int) -> ProtocolResult:
    """Play ``episodes`` protocol episodes one at a time (a hop cycle restarts its count at each episode)."""
    results = []
    for i in range(episodes):
        if isinstance(policy, HopCycle):
            policy.reset()
        results.append(evaluate_protocol(policy, env_kwargs, 1, seed + i))
    return sum(results[1:], results[0])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/baselines.py", description=__doc__.splitlines()[0])
    p.add_argument("--env", default="SuperMarioBros-1-1-v0", help="env id (default: %(default)s)")
    p.add_argument("--actions", default="tutorial", help="action set (default: %(default)s)")
    p.add_argument("--episodes", type=int, default=10, help="protocol episodes per policy (default: %(default)s)")
    p.add_argument("--seed", type=int, default=HELD_OUT_SEED + 5000, help="first episode's seed (default: %(default)s)")
    p.add_argument("--hop-cycles", default="", help="comma-separated k of hop cycles, e.g. 2,3,4,6 (default: none)")
    p.add_argument("--env-kwargs", default="{}", help="more env settings as a YAML mapping, e.g. '{frame_skip: 8}'")
    p.add_argument("models", nargs="*", help="model zips to score first; the baselines then use their env settings")
    p.add_argument("--workers", type=int, default=default_workers(), help="processes for the models' episodes")
    args = p.parse_args(argv)
    try:
        extra = yaml.safe_load(args.env_kwargs)
    except yaml.YAMLError:
        extra = None
    if not isinstance(extra, dict) or args.episodes < 1:
        p.error("--env-kwargs must be a YAML mapping and --episodes >= 1")
    try:
        cycles = [int(k) for k in args.hop_cycles.split(",") if k]
    except ValueError:
        p.error(f"--hop-cycles: comma-separated integers, got {args.hop_cycles!r}")
    if any(k < 2 for k in cycles):
        p.error("--hop-cycles: each k must be >= 2")
    try:
        models = [(path, load_model(path)) for path in args.models]
        settings = dict(models[0][1].mario_env) if models else {"env_id": args.env, "actions": args.actions}
        check_env_id(settings["env_id"])
        actions = resolve_actions(settings.get("actions", "tutorial"))
    except Sb3MarioError as exc:
        return print_error(exc)
    jump = next((i for i, a in enumerate(actions) if "A" in a and "right" in a), len(actions) - 1)
    run = next((i for i, a in enumerate(actions) if a == ["right"]), 0)
    print(f"{settings['env_id']}, {settings.get('actions', 'tutorial')} actions, {args.episodes} protocol episodes "
          f"from seed {args.seed}\n")  # fmt: skip
    print("| policy | repeat_jump | flags | mean furthest x | 95 % interval | greedy shares | no sticky, no no-ops |")
    print("|---|---|---|---|---|---|---|")
    # with models, their own repeat_jump; without, both
    jumps = [bool(settings.get("repeat_jump", False))] if models else [False, True]
    for path, model in models:
        r = evaluate_protocol(model, model.mario_env, args.episodes, args.seed, n_workers=args.workers)
        print(row(path, model, {**model.mario_env, **extra}, r), flush=True)
    for repeat_jump in jumps:
        env_kwargs = {**settings, **extra, "repeat_jump": repeat_jump}
        policies: list[tuple[str, Constant | HopCycle]] = [
            (f"always [{', '.join(a)}]", Constant(i)) for i, a in enumerate(actions)
        ]
        policies += [(f"hop cycle k = {k}", HopCycle(k, jump, run)) for k in cycles]
        for name, policy in policies:
            print(row(name, policy, env_kwargs, score(policy, env_kwargs, args.episodes, args.seed)), flush=True)
    return 0


def load_model(path: str) -> Any:
    """A model zip of either algorithm (its saved class), or a one-line error."""
    from sb3_mario.config import saved_class
    from sb3_mario.runs import check_model_zip, read_model_data

    checked = check_model_zip(path)
    return saved_class(read_model_data(checked)).load(checked, device="cpu")


def row(name: str, policy: Any, env_kwargs: dict[str, Any], r: ProtocolResult) -> str:
    """One table row: protocol flags, mean x, interval, greedy shares, and the episode without perturbations."""
    if isinstance(policy, HopCycle):
        policy.reset()
    # the protocol's episode without its perturbations (its frame cap kept)
    plain, _ = play(policy, {**protocol_env_kwargs(env_kwargs), "sticky_actions": 0.0}, episodes=1, noop_max=0)
    low, high = r.flag_interval()
    clean = f"{'flag' if plain[0]['flag'] else 'no flag'}, x {plain[0]['x_pos']}"
    jump = "on" if env_kwargs.get("repeat_jump") else "off"
    return (
        f"| {name} | {jump} | {r.flags}/{r.n} | {r.mean_x:.0f} | {low:.0%}-{high:.0%} | {r.action_mix(env_kwargs)} | {clean} |"
    )


if __name__ == "__main__":
    sys.exit(main())
