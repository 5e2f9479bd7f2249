"""Record an action sequence that takes Mario to the flag of 1-1 (test data for tests/test_envs.py).

Backtracking random search over the emulator's save state: from the last checkpoint, try a random chunk of
agent steps (each action held for ``frame_skip`` frames, as MarioFrameSkip does); keep it if Mario is alive and
further right, otherwise restore and try another. The result is replayed through the full wrapper stack by the test.

Usage: python tests/data/record_flag_run.py [SEED]   (writes tests/data/flag_run_1-1.json)
"""

import json
import pathlib
import random
import sys

from sb3_mario.envs import MarioBackendEnv

FRAME_SKIP = 4


def run_chunk(env: MarioBackendEnv, actions: list[int]) -> tuple[bool, dict, int]:
    """Play ``actions``; return (alive, last info, number of actions played)."""
    info: dict = {}
    for i, action in enumerate(actions):
        for _ in range(FRAME_SKIP):
            _, _, terminated, _, info = env.step(action)
            if terminated:
                return False, info, i + 1
    return True, info, len(actions)


def main(seed: int) -> None:
    rng = random.Random(seed)
    env = MarioBackendEnv("SuperMarioBros-1-1-v0", "tutorial")
    env.reset(seed=seed)
    nes = env.nes
    committed: list[int] = []
    x_best = 0
    nes._backup()  # note: nes-py's reset() now restores this slot; the env is rebuilt to go back further
    fails = 0
    while True:
        chunk = []
        while len(chunk) < 12:
            chunk += [rng.choice([0, 1])] * rng.randint(1, 6)
        alive, info, played = run_chunk(env, chunk)
        if info.get("flag_get"):
            committed += chunk[:played]
            print(f"flag at x_pos={info['x_pos']} after {len(committed)} agent steps")
            break
        if alive and info["x_pos"] > x_best:
            committed += chunk
            x_best = info["x_pos"]
            nes._backup()
            fails = 0
            continue
        fails += 1
        if fails > 40:  # stuck: drop the last few chunks by replaying a shorter prefix from reset
            # (a fresh env: reset() would restore our save state, since nes-py keeps a single backup slot)
            committed = committed[: max(0, len(committed) - 36)]
            env.close()
            env = MarioBackendEnv("SuperMarioBros-1-1-v0", "tutorial")
            env.reset(seed=seed)
            nes = env.nes
            run_chunk(env, committed)
            x_best = 0
            fails = 0
            nes._backup()
            continue
        nes._restore()
        env._episode_over = False
        nes.done = False
    out = pathlib.Path(__file__).with_name("flag_run_1-1.json")
    out.write_text(
        json.dumps({"env_id": "SuperMarioBros-1-1-v0", "actions": "tutorial", "frame_skip": FRAME_SKIP, "steps": committed})
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
