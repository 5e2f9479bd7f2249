"""``python -m bench.gpu``: the packaged 1-1 recipe (``-conf ddqn_frontier``) on a CUDA GPU, in one call.

Prints the learner's step (sample + update of a batch of 32, synchronised) and the training rate in env steps/s
for ``--n-envs`` 1, 4 and 8 (env workers in processes, every network on the GPU, float32: bf16 only where asked
for), each after a burn-in past ``learning_starts``, epsilon pinned at the recipe's final 0.1 as in
:mod:`bench.bench_profile`. Writes ``bench/results/gpu.json``. Where no CUDA device is found it says so in one line
and exits 1. The figures scale with the CPU cores beside the GPU: the machine line says how many this process has.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch as th

from bench.common import write_result
from sb3_mario.buffers import with_weights
from sb3_mario.callbacks import MarioMetricsCallback
from sb3_mario.config import load_hyperparams
from sb3_mario.ddqn.engine import usable_cores
from sb3_mario.experiment import make_env, make_model

ENV_ID = "SuperMarioBros-1-1-v0"


def learner_ms(model: Any, repeats: int = 200) -> float:
    """Milliseconds of one gradient step (sample + update) on the model's device, synchronised."""
    batches = [with_weights(model.replay_buffer.sample(model.batch_size)) for _ in range(repeats)]
    model._gradient_steps(batches[:20])  # warm-up (kernels, allocator)
    th.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        model._gradient_steps([with_weights(model.replay_buffer.sample(model.batch_size))])
    th.cuda.synchronize()
    return 1000 * (time.perf_counter() - start) / repeats


def rate(n_envs: int, device: str, steps: int, learning_starts: int) -> dict[str, Any]:
    """Env steps/s of ``learn()`` on the recipe with ``n_envs`` env workers, past ``learning_starts``."""
    overrides = {
        "n_envs": n_envs,
        "learning_starts": learning_starts,
        "exploration_initial_eps": 0.1,
        "exploration_final_eps": 0.1,
    }
    hyperparams = load_hyperparams("ddqn", ENV_ID, "ddqn_frontier", overrides)
    venv = make_env(ENV_ID, hyperparams, seed=0, vec_env="subproc")
    try:
        model = make_model("ddqn", hyperparams, venv, seed=0, device=device)
        model.learn(learning_starts + 10 * n_envs, callback=[MarioMetricsCallback()])
        start, before = time.perf_counter(), model.num_timesteps
        model.learn(steps, reset_num_timesteps=False, callback=[MarioMetricsCallback()])
        out = {"n_envs": n_envs, "steps_per_s": (model.num_timesteps - before) / (time.perf_counter() - start)}
        if n_envs == 1:
            out["learner_ms"] = learner_ms(model)
        return out
    finally:
        venv.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="CUDA device (default: %(default)s)")
    p.add_argument("--steps", type=int, default=4000, help="timed env steps per n_envs (default: %(default)s)")
    p.add_argument("--learning-starts", type=int, default=2000, help="burn-in transitions (default: %(default)s)")
    p.add_argument("--n-envs", type=int, nargs="+", default=[1, 4, 8], help="(default: 1 4 8)")
    args = p.parse_args(argv)
    if not th.cuda.is_available():
        build = f"built with CUDA {th.version.cuda}" if th.version.cuda else "a CPU-only build"
        print(f"no CUDA GPU found (torch {th.__version__}, {build}): nothing measured", file=sys.stderr)
        return 1
    name = th.cuda.get_device_name(th.device(args.device))
    print(f"{name}, {usable_cores()} CPU cores, torch {th.__version__}")
    rows = []
    for n in args.n_envs:
        row = rate(n, args.device, args.steps, args.learning_starts)
        rows.append(row)
        if "learner_ms" in row:
            print(f"learner step (sample + update, batch 32): {row['learner_ms']:.2f} ms")
        print(f"n_envs {n}: {row['steps_per_s']:.1f} env steps/s")
    write_result("gpu", {"device": name, "cores": usable_cores(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
