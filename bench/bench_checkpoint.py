"""A replay-buffer checkpoint of the 1-1 recipe (100k transitions of 4x42x42 frames): what it writes and how long it
takes, early in a run (6k transitions) and once the buffer is full, saved as ``train`` saves it (SB3's
``save_replay_buffer`` through the atomic write: temporary file, fsync, rename).

``trimmed`` is the buffer's own pickle, which holds only what was written (:meth:`FrameStackReplayBuffer.__getstate__`);
``full_capacity`` pickles the same arrays at their whole capacity, as every save did before. Alternating, 3 repeats.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from bench.common import write_result
from sb3_mario import FrameStackReplayBuffer
from sb3_mario.callbacks import save_replay_buffer

CAPACITY, SIDE, STACK = 100_000, 42, 4


class _FullCapacity:
    """Pickles like the buffer did before trimming: every array at its capacity."""

    def __init__(self, buffer: FrameStackReplayBuffer) -> None:
        self.__dict__ = buffer.__dict__


class _Saver:
    """What ``save_replay_buffer`` needs of a model: its ``save_replay_buffer``, here SB3's own ``save_to_pkl``."""

    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer

    def save_replay_buffer(self, path: Path) -> None:
        from stable_baselines3.common.save_util import save_to_pkl

        save_to_pkl(path, self.buffer)


def fill(buffer: FrameStackReplayBuffer, n: int, rng: np.random.Generator) -> None:
    """Add ``n`` transitions of random frames, 300-step episodes."""
    obs = rng.integers(0, 256, size=(STACK, SIDE, SIDE), dtype=np.uint8)
    for t in range(n):
        done = t % 300 == 299
        nxt = np.concatenate([obs[1:], rng.integers(0, 256, size=(1, SIDE, SIDE), dtype=np.uint8)])
        buffer.add(obs, nxt, np.array([[t % 2]]), np.array([0.1]), np.array([done]), [{}])
        obs = np.repeat(nxt[-1:], STACK, axis=0) if done else nxt


def measure(buffer: FrameStackReplayBuffer, folder: Path, repeats: int) -> dict[str, dict[str, float]]:
    savers = {"trimmed": _Saver(buffer), "full_capacity": _Saver(_FullCapacity(buffer))}
    seconds: dict[str, list[float]] = {name: [] for name in savers}
    sizes = {}
    for _ in range(repeats):
        for name, saver in savers.items():
            path = folder / f"{name}.pkl"
            start = time.perf_counter()
            save_replay_buffer(saver, path)
            seconds[name].append(time.perf_counter() - start)
            sizes[name] = path.stat().st_size
            path.unlink()
    return {name: {"seconds": statistics.median(seconds[name]), "mib": sizes[name] / 2**20} for name in savers}


def run(early: int = 6000, repeats: int = 3) -> dict[str, Any]:
    space = spaces.Box(0, 255, (STACK, SIDE, SIDE), np.uint8)
    buffer = FrameStackReplayBuffer(CAPACITY, space, spaces.Discrete(2), device="cpu")
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"capacity": CAPACITY, "frame": f"{STACK}x{SIDE}x{SIDE}"}
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as folder:  # the disk the runs write to
        fill(buffer, early, rng)
        out[str(early)] = measure(buffer, Path(folder), repeats)
        fill(buffer, CAPACITY - early, rng)
        out[str(CAPACITY)] = measure(buffer, Path(folder), repeats)
    write_result("checkpoint", out)
    return out


def table(out: dict[str, Any]) -> str:
    rows = [
        f"| replay-buffer checkpoint ({out['frame']}, capacity {out['capacity']}) | MiB written | seconds |",
        "|---|---|---|",
    ]
    for fill_ in (key for key in out if key.isdigit()):
        for name, row in out[fill_].items():
            rows.append(f"| {fill_} transitions, {name.replace('_', ' ')} | {row['mib']:.1f} | {row['seconds']:.2f} |")
        ratio = out[fill_]["trimmed"]["mib"] / out[fill_]["full_capacity"]["mib"]
        rows.append(f"| {fill_} transitions, trimmed / full capacity (bytes) | {ratio:.3f} | |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(table(run()))
