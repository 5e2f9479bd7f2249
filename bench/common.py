"""Shared helpers: alternating repeats, medians, machine description, JSON results."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict[str, Any]:
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def alternate(contenders: dict[str, Callable[[], float]], repeats: int, warmup: int = 1) -> dict[str, dict[str, Any]]:
    """Run each contender ``warmup`` times (discarded), then ``repeats`` rounds alternating between them.

    Each callable returns its own figure (e.g. steps/s). Returns per contender the raw values, median and spread.
    """
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    values: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            values[name].append(fn())
    return {name: {"values": v, "median": statistics.median(v), "min": min(v), "max": max(v)} for name, v in values.items()}


def median_rows(contenders: dict[str, dict[str, Any]], label: Callable[[str], str] = str) -> list[str]:
    """Markdown rows ``| name | median | min-max |`` of :func:`alternate`'s results."""
    return [f"| {label(n)} | {r['median']:.1f} | {r['min']:.1f}-{r['max']:.1f} |" for n, r in contenders.items()]


def env_steps(env: Any, actions: list[int], reset: bool = True) -> Callable[[], int]:
    """A contender for :func:`timed`: ``env`` steps through ``actions`` (after a ``reset`` if asked), resetting at
    each episode's end; returns the number of steps."""

    def run_steps() -> int:
        if reset:
            env.reset()
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        return len(actions)

    return run_steps


def timed(fn: Callable[[], int]) -> float:
    """Call ``fn`` (which returns a count of work items) and return items per second."""
    start = time.perf_counter()
    n = fn()
    return n / (time.perf_counter() - start)


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "git_sha": git_sha(),
        "machine": machine(),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)
    return path
