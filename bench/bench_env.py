"""Env throughput: the backend's own step (frames/s) vs the full wrapper stack at frame skip 4 (agent steps/s).

"raw" calls the backend env's ``step`` directly (emulator + reward + info, no adapter); "wrapped" is
``make_mario_env()`` (adapter, skip 4, gray + resize, stack 4, episode stats); "wrapped_repeat_jump" is the same
with ``repeat_jump=True`` (the option reads RAM each frame A is held). All replay the same random actions and reset
on death. Target: wrapped >= 0.95 x raw / 4.
"""

from __future__ import annotations

import numpy as np

from bench.common import alternate, env_steps, timed, write_result
from sb3_mario import make_mario_env
from sb3_mario.envs.actions import action_bytes, resolve_actions


def run(frames: int = 4000, repeats: int = 5) -> dict:
    skip = 4
    wrapped = make_mario_env(frame_skip=skip)
    wrapped_rj = make_mario_env(frame_skip=skip, repeat_jump=True)
    raw = wrapped.unwrapped.nes
    buttons = action_bytes(resolve_actions("tutorial"))
    actions = np.random.default_rng(0).integers(0, 2, size=frames // skip).tolist()

    def raw_frames() -> int:
        """The same frames the wrapped env runs: each action held for 4 frames, cut short at an episode's end."""
        raw.reset()
        frames_run = 0
        for a in actions:
            byte = buttons[a]
            for _ in range(skip):
                frames_run += 1
                if raw.step(byte)[2]:
                    raw.reset()
                    break
        return frames_run

    frames_per_step = raw_frames() / len(actions)
    res = alternate(
        {
            "raw_frames_per_s": lambda: timed(raw_frames),
            "wrapped_steps_per_s": lambda: timed(env_steps(wrapped, actions)),
            "wrapped_repeat_jump_steps_per_s": lambda: timed(env_steps(wrapped_rj, actions)),
        },
        repeats=repeats,
    )
    wrapped.close()
    wrapped_rj.close()
    raw_med, wrapped_med = res["raw_frames_per_s"]["median"], res["wrapped_steps_per_s"]["median"]
    out = {
        "frame_skip": skip,
        "agent_steps_per_repeat": len(actions),
        "frames_per_agent_step": frames_per_step,
        "contenders": res,
        "ratios": {
            # the definition: wrapped agent steps/s against raw frames/s divided by the skip
            "wrapped_vs_raw_over_skip": wrapped_med / (raw_med / skip),
            # same frames both ways (episode ends cut a skip short): time of raw / time of wrapped
            "same_work_speed_ratio": wrapped_med * frames_per_step / raw_med,
            "repeat_jump_vs_wrapped": res["wrapped_repeat_jump_steps_per_s"]["median"] / wrapped_med,
        },
    }
    write_result("env", out)
    return out


def table(out: dict) -> str:
    c = out["contenders"]
    return (
        "| env | median | min-max |\n|---|---|---|\n"
        f"| raw emulator frames/s | {c['raw_frames_per_s']['median']:.0f} | "
        f"{c['raw_frames_per_s']['min']:.0f}-{c['raw_frames_per_s']['max']:.0f} |\n"
        f"| wrapped agent steps/s (skip 4) | {c['wrapped_steps_per_s']['median']:.1f} | "
        f"{c['wrapped_steps_per_s']['min']:.1f}-{c['wrapped_steps_per_s']['max']:.1f} |\n"
        f"| wrapped + repeat_jump agent steps/s | {c['wrapped_repeat_jump_steps_per_s']['median']:.1f} | "
        f"{c['wrapped_repeat_jump_steps_per_s']['min']:.1f}-{c['wrapped_repeat_jump_steps_per_s']['max']:.1f} |\n"
        f"| ratio wrapped / (raw/4) | {out['ratios']['wrapped_vs_raw_over_skip']:.3f} | target >= 0.95 |\n"
        f"| same frames, speed wrapped / raw | {out['ratios']['same_work_speed_ratio']:.3f} | "
        f"{out['frames_per_agent_step']:.2f} frames per step |\n"
        f"| speed repeat_jump / wrapped | {out['ratios']['repeat_jump_vs_wrapped']:.3f} | |\n"
    )


if __name__ == "__main__":
    print(table(run()))
