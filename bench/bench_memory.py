"""Replay memory for 4x84x84 uint8 Mario observations: FrameStackReplayBuffer vs SB3's ReplayBuffer (two modes).

Two measures per contender: bytes of every array the buffer holds divided by its capacity, and the resident memory
(RSS) a filled 100k buffer adds to a fresh process (each contender fills its buffer in a child process).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from gymnasium import spaces

from bench.common import write_result

OBS_SPACE = spaces.Box(0, 255, (4, 84, 84), np.uint8)
ACT_SPACE = spaces.Discrete(2)
CONTENDERS = ("frame_stack", "sb3", "sb3_optimize_memory_usage")


def make(name: str, size: int):
    from stable_baselines3.common.buffers import ReplayBuffer

    from sb3_mario import FrameStackReplayBuffer

    if name == "frame_stack":
        return FrameStackReplayBuffer(size, OBS_SPACE, ACT_SPACE, device="cpu")
    if name == "sb3":
        return ReplayBuffer(size, OBS_SPACE, ACT_SPACE, device="cpu")
    return ReplayBuffer(size, OBS_SPACE, ACT_SPACE, device="cpu", optimize_memory_usage=True, handle_timeout_termination=False)


def array_bytes_per_transition(buffer) -> float:
    return sum(v.nbytes for v in vars(buffer).values() if isinstance(v, np.ndarray)) / (buffer.buffer_size * buffer.n_envs)


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def child(name: str, size: int) -> dict:
    """Fill a buffer with Mario-like transitions (200-step episodes, new frame each step) and report its RSS."""
    make(name, 1)  # import torch, SB3 and sb3_mario before the baseline reading
    rng = np.random.default_rng(0)
    palette = rng.integers(0, 256, size=(64, 84, 84), dtype=np.uint8)
    before = rss_bytes()
    buffer = make(name, size)
    obs = np.repeat(palette[:1], 4, axis=0)
    for t in range(size):
        frame = palette[(t * 7 + 3) % 64] ^ np.uint8(t % 251)
        nxt = np.concatenate([obs[1:], frame[None]])
        done = t % 200 == 199
        buffer.add(obs, nxt, np.array([t % 2]), np.array([1.0]), np.array([done]), [{}])
        obs = np.repeat(nxt[-1:], 4, axis=0) if done else nxt
    return {
        "rss_added_bytes_per_transition": (rss_bytes() - before) / size,
        "array_bytes_per_transition": array_bytes_per_transition(buffer),
    }


def run(size: int = 100_000) -> dict:
    results = {}
    for name in CONTENDERS:
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_memory", "--child", name, str(size)],
            capture_output=True,
            text=True,
            check=True,
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    ours = results["frame_stack"]["array_bytes_per_transition"]
    out = {
        "capacity": size,
        "contenders": results,
        "ratios": {
            "sb3_vs_ours": results["sb3"]["array_bytes_per_transition"] / ours,
            "sb3_optimized_vs_ours": results["sb3_optimize_memory_usage"]["array_bytes_per_transition"] / ours,
        },
    }
    write_result("memory", out)
    return out


def table(out: dict) -> str:
    rows = ["| replay buffer (4x84x84, 100k) | array bytes/transition | RSS added/transition |", "|---|---|---|"]
    for name, r in out["contenders"].items():
        rows.append(f"| {name} | {r['array_bytes_per_transition']:.0f} | {r['rss_added_bytes_per_transition']:.0f} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]))))
    else:
        print(table(run()))
