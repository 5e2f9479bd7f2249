"""Emulator snapshots and frontier starts (Python >= 3.13: nes-py 9).

"frame" is one raw emulator frame (``NESEnv.step``); "snapshot" and "restore" are
:meth:`~sb3_mario.envs.MarioBackendEnv.snapshot` / ``restore`` (nes-py's ``dump_state`` / ``load_state`` plus the
Python-side state); all three in calls per second. Then agent steps/s of the training env with 84x84 frames, sticky
actions, ``show_buttons`` and 100-step episodes (so that resets are frequent), without and with ``frontier_starts``
(q = 0.5: half the resets restore a snapshot, and every step may offer one to the archive), on the same seeded
random actions.
"""

from __future__ import annotations

import numpy as np

from bench.common import alternate, env_steps, median_rows, timed, write_result
from sb3_mario import make_mario_env


def run(calls: int = 2000, steps: int = 1500, repeats: int = 5) -> dict:
    env = make_mario_env(seed=0)
    backend = env.unwrapped
    for _ in range(15):  # into the level, where a snapshot holds a running game
        env.step(0)
    snapshot = backend.snapshot()
    nes = backend.nes

    def frames() -> int:  # chunks of 50 frames from the snapshot (a restore per 50 frames: ~0.1 % of their time)
        for _ in range(calls // 200):
            backend.restore(snapshot)
            for _ in range(50):
                nes.step(0)
        return calls // 200 * 50

    def snapshots() -> int:
        for _ in range(calls):
            backend.snapshot()
        return calls

    def restores() -> int:
        for _ in range(calls):
            backend.restore(snapshot)
        return calls

    settings = dict(sticky_actions=0.25, show_buttons=True, max_episode_steps=100)
    plain = make_mario_env(**settings, seed=0)
    frontier = make_mario_env(**settings, frontier_starts=0.5, seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=steps).tolist()

    res = alternate(
        {
            "frame_per_s": lambda: timed(frames),
            "snapshot_per_s": lambda: timed(snapshots),
            "restore_per_s": lambda: timed(restores),
            "steps_per_s": lambda: timed(env_steps(plain, actions, reset=False)),
            "frontier_steps_per_s": lambda: timed(env_steps(frontier, actions, reset=False)),
        },
        repeats=repeats,
    )
    restarts = frontier.get_wrapper_attr("restarts")
    for e in (env, plain, frontier):
        e.close()
    frame = res["frame_per_s"]["median"]
    out = {
        "contenders": res,
        "frontier_restarts": restarts,
        "ratios": {
            "snapshot_vs_frame_time": frame / res["snapshot_per_s"]["median"],
            "restore_vs_frame_time": frame / res["restore_per_s"]["median"],
            "frontier_vs_plain_speed": res["frontier_steps_per_s"]["median"] / res["steps_per_s"]["median"],
        },
    }
    write_result("snapshots", out)
    return out


def table(out: dict) -> str:
    r = out["ratios"]
    rows = median_rows(out["contenders"], label=lambda k: k.replace("_per_s", " /s").replace("_", " "))
    return (
        "| snapshots (calls or agent steps per s) | median | min-max |\n|---|---|---|\n"
        + "\n".join(rows)
        + f"\n| time of a snapshot / an emulator frame | {r['snapshot_vs_frame_time']:.3f} | |\n"
        f"| time of a restore / an emulator frame | {r['restore_vs_frame_time']:.3f} | |\n"
        f"| speed with frontier starts (q 0.5) / without | {r['frontier_vs_plain_speed']:.3f} | "
        f"{out['frontier_restarts']} restarts |\n"
    )


if __name__ == "__main__":
    print(table(run()))
