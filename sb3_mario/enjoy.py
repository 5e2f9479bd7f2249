"""``python -m sb3_mario.enjoy RUN_OR_ZIP``: watch a trained agent, print each episode, record a video.

Works with any SB3 DQN-family zip on these envs; the env settings saved with the model (``mario_env``) rebuild the
same env, or ``--env``/``--actions`` say which to use for zips from elsewhere.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import cv2
import imageio.v2 as imageio
import numpy as np

from sb3_mario._io import atomic_path
from sb3_mario.config import saved_class
from sb3_mario.envs import make_mario_env
from sb3_mario.envs.factory import play_env_kwargs
from sb3_mario.errors import Sb3MarioError, print_error
from sb3_mario.evaluation import default_workers, evaluate_protocol
from sb3_mario.pretrained import pretrained_path
from sb3_mario.runs import read_model_data, resolve_model_path

VIDEO_SUFFIXES = (".mp4", ".gif")


def play(
    model: Any,
    env_kwargs: dict[str, Any],
    episodes: int = 1,
    deterministic: bool = True,
    record: bool = False,
    noop_max: int = 0,
    seed: int = 0,
    render: bool = False,
    max_steps: int = 5000,
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """Play ``episodes`` episodes; return per-episode stats and (if ``record``) the RGB frames.

    :param noop_max: start each episode with 0..``noop_max`` (seeded) do-nothing steps, so a deterministic
        emulator does not replay one memorised run
    """
    render_mode = "human" if render else ("rgb_array" if record else None)
    env = make_mario_env(**{**play_env_kwargs(env_kwargs), "noop_max": noop_max}, render_mode=render_mode)
    frames: list[np.ndarray] = []
    stats = []
    try:
        for episode in range(episodes):
            obs, info = env.reset(seed=seed + episode)  # takes the seeded no-ops (NoopStart)
            n_noops = int(info.get("noops", 0))
            total, steps, done = 0.0, 0, False
            while not done and steps < max_steps:
                action, _ = model.predict(obs, deterministic=deterministic)
                obs, reward, terminated, truncated, info = env.step(int(action))
                total += float(reward)
                steps += 1
                done = terminated or truncated
                if record:
                    frames.append(env.render())  # type: ignore[arg-type]
            stats.append(
                {
                    "episode": episode,
                    "return": total,
                    "steps": steps,
                    "x_pos": int(info["x_pos"]),
                    "flag": bool(info["flag_get"]),
                    "noops": n_noops,
                    "start_x": int(info.get("start_x", 0)),
                }
            )
    finally:
        env.close()
    return stats, frames


def write_video(frames: list[np.ndarray], path: str | Path, fps: int = 15) -> Path:
    """Write RGB frames as ``.gif`` (imageio) or ``.mp4`` (OpenCV, mp4v), atomically."""
    path = Path(path)
    if path.suffix not in VIDEO_SUFFIXES:
        raise Sb3MarioError(f"--record: use a .mp4 or .gif file name, got {path.name!r}")
    if not frames:
        raise Sb3MarioError("no frames to record")
    with atomic_path(path) as tmp:
        if path.suffix == ".gif":
            imageio.mimsave(tmp, frames, format="GIF", duration=1000 / fps, loop=0)  # type: ignore[arg-type]
        else:
            height, width = frames[0].shape[:2]
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
            if not writer.isOpened():
                raise Sb3MarioError(f"cannot open an mp4 writer for {path}")
            for frame in frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            writer.release()
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sb3_mario.enjoy", description="Watch a trained Mario agent.")
    p.add_argument("model", nargs="?", help="model zip, or a run folder (its best model, else its newest)")
    p.add_argument("--pretrained", metavar="ENV_ID", help="play the model shipped for ENV_ID instead")
    p.add_argument("--episodes", type=int, default=1, help="episodes to play (default: 1)")
    p.add_argument(
        "--deterministic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="greedy actions (default) or epsilon-greedy with the model's exploration rate",
    )
    p.add_argument("--record", help="write a video: out.mp4 or out.gif")
    p.add_argument("--render", action="store_true", help="show a window (needs a display)")
    p.add_argument("--noop-max", type=int, default=0, help="random 0..N no-op steps at each start (default: 0)")
    p.add_argument("--seed", type=int, default=0, help="seed for no-op starts (default: 0)")
    p.add_argument(
        "--protocol",
        action="store_true",
        help="play under the evaluation protocol (sticky actions 0.25, 0-30 no-op starts, 4000-frame cap; "
        "episode i seeded SEED + i) and report the flag rate",
    )
    p.add_argument("--env", help="env id (default: the one saved with the model)")
    p.add_argument("--actions", help="action set (default: the one saved with the model)")
    args = p.parse_args(argv)
    if args.episodes < 1:
        p.error("--episodes must be >= 1")
    if (args.model is None) == (args.pretrained is None):
        p.error("give a model zip or run folder, or --pretrained ENV_ID (not both)")
    action_mix = ""
    try:
        if args.record and Path(args.record).suffix not in VIDEO_SUFFIXES:
            raise Sb3MarioError(f"--record: use a .mp4 or .gif file name, got {args.record!r}")
        path = pretrained_path(args.pretrained) if args.pretrained else resolve_model_path(args.model, prefer_best=True)
        data = read_model_data(path)
        env_kwargs = dict(data.get("mario_env") or {"env_id": "SuperMarioBros-1-1-v0"})
        if args.env:
            env_kwargs["env_id"] = args.env
        if args.actions:
            env_kwargs["actions"] = args.actions
        model = saved_class(data).load(path, device="cpu")
        if args.protocol:
            recorded: list[np.ndarray] | None = [] if args.record else None
            result = evaluate_protocol(
                model, env_kwargs, args.episodes, args.seed, record=recorded, n_workers=default_workers()
            )
            stats = [
                {"episode": i, "return": e.game_return, "steps": e.steps, "x_pos": e.max_x, "flag": e.flag, "noops": e.noops}
                for i, e in enumerate(result.episodes)
            ]
            frames = recorded or []
            action_mix = f"greedy actions {result.action_mix(env_kwargs)}"
        else:
            stats, frames = play(
                model, env_kwargs, args.episodes, args.deterministic, bool(args.record), args.noop_max, args.seed, args.render
            )
    except Sb3MarioError as exc:
        return print_error(exc)
    for s in stats:
        print(
            f"episode {s['episode']}: return {s['return']:.1f}, steps {s['steps']}, x_pos {s['x_pos']}, "
            f"flag {'yes' if s['flag'] else 'no'}"
        )
    flags = sum(s["flag"] for s in stats)
    print(f"{path}: {flags}/{len(stats)} flags, mean x_pos {np.mean([s['x_pos'] for s in stats]):.0f}")
    if action_mix:
        print(action_mix)
    if args.record:
        try:
            print(f"wrote {write_video(frames, args.record)} ({len(frames)} frames)")
        except Sb3MarioError as exc:
            return print_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
