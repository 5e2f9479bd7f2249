"""Protocol evaluation wall clock: the shipped 1-1 model's episodes played by 1 process against 2 (``n_workers``).

Training waits while it evaluates, so this is time taken from every run. Both contenders play the same seeded
episodes (the results are compared too); they alternate, warm-up excluded. The worker processes are kept between
evaluations, so their start-up (``spawn``, imports: ~3-6 s) falls in the warm-up here, as it falls in a run's first
evaluation only; ``first_call_s`` records it.

Then the same episodes in this process beside a busy one (a 2-thread torch loop standing in for a training on the
same cores), played on torch's default thread count against one thread: what ``evaluate_protocol`` now does, since
the extra threads of a one-frame forward pass wait for cores the busy process holds.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import torch as th

import sb3_mario
from bench.common import alternate, median_rows, write_result
from sb3_mario.evaluation import _play, evaluate_protocol

# a learner's stand-in on a 2-core machine: matrix products on 2 torch threads until killed
BUSY = "import torch\ntorch.set_num_threads(2)\na = torch.randn(256, 256)\nwhile True:\n    a = torch.tanh(a @ a)\n"
DEFAULT = th.get_num_threads()  # torch's own count in a plain process


def run(episodes: int = 4, repeats: int = 3) -> dict:
    model = sb3_mario.load_pretrained("SuperMarioBros-1-1-v0")
    seed = 1_000_000_700
    results = {}

    def timer(workers: int):
        def seconds() -> float:
            start = time.perf_counter()
            results[workers] = evaluate_protocol(model, model.mario_env, episodes, seed, n_workers=workers)
            return time.perf_counter() - start

        return seconds

    start = time.perf_counter()
    evaluate_protocol(model, model.mario_env, 2, seed, n_workers=2)  # starts the worker process
    first_call = time.perf_counter() - start
    res = alternate({"1 process": timer(1), "2 processes": timer(2)}, repeats=repeats)
    contended = contended_threads(model, 1, seed, repeats=2)  # 1 episode: the slow contender is ~7x slower
    out = {
        "unit": f"seconds for {episodes} protocol episodes",
        "episodes": episodes,
        "same_results": results[1] == results[2],
        "steps": sum(e.steps for e in results[1].episodes),
        "first_call_s": first_call,
        "contenders": res,
        "contended": contended,
        "ratios": {
            "speedup_2_vs_1": res["1 process"]["median"] / res["2 processes"]["median"],
            "busy_speedup_1_thread": contended[f"{DEFAULT} threads"]["median"] / contended["1 thread"]["median"],
        },
    }
    write_result("eval", out)
    return out


def contended_threads(model: Any, episodes: int, seed: int, repeats: int) -> dict:
    """The episodes played in this process beside a busy process, on torch's default threads against one."""

    def timer(threads: int):
        def seconds() -> float:
            th.set_num_threads(threads)
            start = time.perf_counter()
            _play(model, model.mario_env, seed, episodes)
            return time.perf_counter() - start

        return seconds

    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        return alternate({f"{DEFAULT} threads": timer(DEFAULT), "1 thread": timer(1)}, repeats=repeats)
    finally:
        busy.kill()
        busy.wait()
        th.set_num_threads(DEFAULT)


def table(out: dict) -> str:
    return (
        f"| {out['episodes']} protocol episodes ({out['steps']} agent steps), shipped 1-1 model | median s | min-max |\n"
        "|---|---|---|\n"
        + "".join(row + "\n" for row in median_rows(out["contenders"]))
        + f"| speed-up 2 processes / 1 | {out['ratios']['speedup_2_vs_1']:.2f} | same episodes: {out['same_results']} |\n"
        + f"| first call with 2 processes (2 episodes, worker start-up included) | {out['first_call_s']:.1f} | |\n"
        + "".join(f"{row}\n" for row in median_rows(out["contended"], lambda n: f"1 process beside a busy one, {n}"))
        + f"| speed-up beside a busy process, 1 thread / {DEFAULT} | {out['ratios']['busy_speedup_1_thread']:.2f} | |\n"
    )


if __name__ == "__main__":
    print(table(run()))
