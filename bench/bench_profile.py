"""Where a training step's time goes, on the packaged 1-1 recipe (``-conf ddqn_frontier``), in one process.

Phases, each on the same envs and model, the recipe's settings (42x42, ``show_buttons``, sticky actions, frontier
starts, one gradient step of batch 32 per env step) with ``learning_starts`` lowered so the buffer fills quickly and
epsilon pinned at the recipe's final 0.1 (its steady state after the first 50k steps):

1. **env**: the env workers stepped with random actions (wall per step, and the workers' CPU per step);
2. **acting**: ``learn()`` with no gradient steps (``gradient_steps`` 0): acting, the replay buffer and SB3's loop;
3. **learning**: ``learn()`` as in training; the learner thread's wall and CPU per step are clocked;
4. alone, nothing else running: the acting forward pass (one thread, as in training) and the learner's step (its
   sample in the main thread, its update on the threads training gives it);
5. one checkpoint with the replay buffer, and one evaluation (5 protocol episodes in the evaluation's workers), at
   the buffer's fill of phase 3.

From these it states the **rate two cores allow** with ideal overlap: per env step the main thread and the env
worker run in series (SB3's loop waits for the step), the learner beside them, all on ``cores`` cores, so a step
takes at least ``max(main + env, learner, (main + env + learner) / cores)``; and the **ratio** that ``learn()``
reaches, then with an evaluation every 20k steps and a checkpoint every 10k (``--save-freq 10000
--save-replay-buffer``, the lab book's runs) added at their measured cost.

CPU times come from ``/proc`` (Linux): the env workers' ``utime + stime``, the main and learner threads'
``time.thread_time``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.vec_env import SubprocVecEnv

from bench.common import write_result
from sb3_mario.buffers import with_weights
from sb3_mario.callbacks import AtomicCheckpointCallback, MarioMetricsCallback
from sb3_mario.config import load_hyperparams
from sb3_mario.ddqn.engine import learner_threads, usable_cores
from sb3_mario.evaluation import close_workers, default_workers, evaluate_protocol
from sb3_mario.experiment import make_env, make_model

ENV_ID = "SuperMarioBros-1-1-v0"
RECIPE = "ddqn_frontier"
EVAL_FREQ = 20_000  # train's default
SAVE_FREQ = 10_000  # the lab book's runs (--save-freq 10000 --save-replay-buffer)
EPSILON = 0.1  # the recipe's exploration_final_eps


def workers_cpu(venv: Any) -> float:
    """CPU seconds (user + system) the env worker processes used so far; 0 for in-process envs."""
    if not isinstance(venv, SubprocVecEnv):
        return 0.0
    total = 0
    for process in venv.processes:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


class LearnerClock:
    """Wraps a DDQN's ``_gradient_steps`` (which runs in the learner thread) to add up its wall and CPU time."""

    def __init__(self, model: Any) -> None:
        self.wall = self.cpu = 0.0
        self.calls = 0
        self._inner = model._gradient_steps
        model._gradient_steps = self

    def __call__(self, batches: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        result = self._inner(batches)
        self.wall += time.perf_counter() - wall
        self.cpu += time.thread_time() - cpu
        self.calls += 1
        return result

    def remove(self, model: Any) -> None:
        """Put the model's own ``_gradient_steps`` back (a saved model must not pickle the clock)."""
        del model._gradient_steps


def timed_learn(model: Any, steps: int, clock: LearnerClock | None = None) -> dict[str, float]:
    """``learn()`` for ``steps`` more env steps; wall, main-thread and worker CPU per step (ms), steps/s."""
    venv = model.get_env()
    before = (time.perf_counter(), time.thread_time(), workers_cpu(venv))
    learner_before = (clock.wall, clock.cpu) if clock else (0.0, 0.0)
    start = model.num_timesteps
    model.learn(steps, reset_num_timesteps=False, callback=[MarioMetricsCallback()])
    done = model.num_timesteps - start
    wall, main, env = (time.perf_counter() - before[0], time.thread_time() - before[1], workers_cpu(venv) - before[2])
    out = {"steps_per_s": done / wall, "wall_ms": 1000 * wall / done, "main_ms": 1000 * main / done}
    out["env_ms"] = 1000 * env / done
    if clock is not None:
        out["learner_wall_ms"] = 1000 * (clock.wall - learner_before[0]) / done
        out["learner_cpu_ms"] = 1000 * (clock.cpu - learner_before[1]) / done
    return out


def random_steps(venv: Any, steps: int, rng: np.random.Generator) -> dict[str, float]:
    """The env workers alone, random actions: wall and worker CPU per env step (ms), steps/s."""
    venv.reset()
    actions = rng.integers(0, venv.action_space.n, size=(steps // venv.num_envs, venv.num_envs))
    start, cpu = time.perf_counter(), workers_cpu(venv)
    for action in actions:
        venv.step(action)
    done = actions.size
    wall = time.perf_counter() - start
    return {"steps_per_s": done / wall, "wall_ms": 1000 * wall / done, "env_ms": 1000 * (workers_cpu(venv) - cpu) / done}


def alone(model: Any, threads: int, repeats: int = 200) -> dict[str, float]:
    """The acting forward pass (one thread) and the learner's step alone: its sample, and its update on ``threads``
    (as in training), on 1 and on every core."""
    obs = model.replay_buffer.sample(model.n_envs).observations.numpy()
    acting_threads = th.get_num_threads()
    th.set_num_threads(1)
    try:
        model._greedy(obs, None, None)
        start = time.perf_counter()
        for _ in range(repeats):
            model._greedy(obs, None, None)
        act = (time.perf_counter() - start) / repeats
        start = time.perf_counter()
        batches = [with_weights(model.replay_buffer.sample(model.batch_size)) for _ in range(repeats)]
        sample = (time.perf_counter() - start) / repeats
    finally:
        th.set_num_threads(acting_threads)
    update: dict[str, float] = {}

    def learner(threads: int) -> None:  # a thread of its own, as the overlapped learner's
        th.set_num_threads(threads)
        model._gradient_steps(batches[:10])  # warm-up
        start = time.perf_counter()
        model._gradient_steps(batches)
        update["s"] = (time.perf_counter() - start) / repeats

    out = {"act_ms": 1000 * act, "sample_ms": 1000 * sample}
    thread = threading.Thread(target=learner, args=(threads,))
    thread.start()
    thread.join()
    out["update_ms"] = 1000 * update["s"]
    # the scaling fit's points in the main thread: torch's intra-op threads run slower from a second thread, whose
    # OpenMP team competes with the main thread's (16 against 9.5 ms on 2 threads here, 2026-12-07)
    for key, n in (("update_1_ms", 1), ("update_all_ms", usable_cores())):
        learner(n)
        out[key] = 1000 * update["s"]
    th.set_num_threads(acting_threads)
    return out


def predict(env_ms: float, main_ms: float, update: tuple[float, float], cores: int) -> dict[str, Any]:
    """What the model predicts with more cores, CPU only, at the recipe's one update per env step: the best split of
    ``cores`` into ``k`` env workers (a core each) and a learner on the ``cores - k`` left, where

    - the envs give ``k / (env + main)`` steps/s (the main thread's work per VecEnv step in series with the step);
    - the learner gives ``1 / update(t)`` updates/s on ``t`` threads, ``update(t) = a + b / t`` (Amdahl's law) fitted
      to the update measured on 1 thread and on all of this machine's cores.

    :param env_ms: env worker CPU per step
    :param main_ms: main thread CPU per VecEnv step
    :param update: the update's ms on 1 thread and on ``cores`` threads
    :param cores: this machine's cores (the second fit point)
    """
    one, many = update
    b = (one - many) / (1 - 1 / cores) if cores > 1 else 0.0
    a = one - b
    rows = {}
    for n in (4, 8, 16):
        best = max(((min(k / (env_ms + main_ms), 1 / (a + b / (n - k))) * 1000, k) for k in range(1, n)), key=lambda r: r[0])
        rows[n] = {"steps_per_s": best[0], "n_envs": best[1], "learner_threads": n - best[1]}
    return {"serial_ms": a, "parallel_ms": b, "cores": rows}


def costs(model: Any) -> dict[str, float]:
    """One checkpoint with the replay buffer, and one evaluation (5 episodes), as ``train`` runs them."""
    with tempfile.TemporaryDirectory() as folder:
        callback = AtomicCheckpointCallback(save_freq=1, save_path=folder, name_prefix="model", save_replay_buffer=True)
        callback.init_callback(model)
        start = time.perf_counter()
        callback.save_now()
        checkpoint = time.perf_counter() - start
        buffer_bytes = (Path(folder) / "replay_buffer.pkl").stat().st_size
    start = time.perf_counter()
    result = evaluate_protocol(model, model.mario_env, 5, seed=10_000_000, n_workers=default_workers())
    evaluation = time.perf_counter() - start
    close_workers()
    steps = sum(e.steps for e in result.episodes)
    return {"checkpoint_s": checkpoint, "buffer_mb": buffer_bytes / 2**20, "eval_s": evaluation, "eval_steps": steps}


def run(steps: int = 2000, learning_starts: int = 2000, n_envs: int = 1) -> dict[str, Any]:
    overrides = {
        "learning_starts": learning_starts,
        "n_envs": n_envs,
        "exploration_initial_eps": EPSILON,
        "exploration_final_eps": EPSILON,
    }
    hyperparams = load_hyperparams("ddqn", ENV_ID, RECIPE, overrides)
    venv = make_env(ENV_ID, hyperparams, seed=0, vec_env="subproc")
    try:
        env = random_steps(venv, steps, np.random.default_rng(0))
        model = make_model("ddqn", hyperparams, venv, seed=0, device="cpu")
        model.learn(learning_starts + 10, callback=[MarioMetricsCallback()])  # burn-in; frontier archive grows
        per_env = model._gradient_steps_per_env
        model.gradient_steps = 0
        acting = timed_learn(model, steps)
        model.gradient_steps = per_env
        clock = LearnerClock(model)
        learning = timed_learn(model, steps, clock)
        clock.remove(model)
        cores = usable_cores()
        threads = learner_threads(model.n_envs, th.get_num_threads())  # as LearnerEngine.learn gives it
        pieces = alone(model, threads)
        cost = costs(model)
    finally:
        venv.close()
    # main thread CPU per step in learning: acting, the loop's Python, sampling, handing updates over
    main, env_cpu, learner = learning["main_ms"], env["env_ms"], pieces["update_ms"]
    # per VecEnv step the main thread waits for the envs, which step at once: per env step, main + env / n_envs
    chain = main + env_cpu / model.n_envs
    bound = max(chain, learner, (main + env_cpu + learner) / cores)
    ideal = 1000 / bound
    overhead_ms = 1000 * (cost["eval_s"] / EVAL_FREQ + cost["checkpoint_s"] / SAVE_FREQ)
    full = 1000 / (learning["wall_ms"] + overhead_ms)
    out = {
        "recipe": f"-conf {RECIPE} --env {ENV_ID} (learning_starts {learning_starts}, epsilon {EPSILON})",
        "n_envs": model.n_envs,
        "cores": cores,
        "learner_threads": threads,
        "steps_per_phase": steps,
        "env": env,
        "acting": acting,
        "learning": learning,
        "alone": pieces,
        "costs": cost,
        "model": {
            "chain_ms": chain,
            "learner_ms": learner,
            "work_per_core_ms": (main + env_cpu + learner) / cores,
            "ideal_steps_per_s": ideal,
            "learn_ratio": learning["steps_per_s"] / ideal,
            "full_steps_per_s": full,
            "full_ratio": full / ideal,
            "loop_python_ms": acting["main_ms"] - pieces["act_ms"] * (1 - EPSILON) / model.n_envs,
        },
        "prediction": predict(env_cpu, main, (pieces["update_1_ms"], pieces["update_all_ms"]), cores),
    }
    write_result(f"profile_n{model.n_envs}", out)
    return out


def table(out: dict[str, Any]) -> str:
    e, a, lr, p, c, m = (out[k] for k in ("env", "acting", "learning", "alone", "costs", "model"))
    rows = [
        f"| {out['recipe']}, n_envs {out['n_envs']}, {out['cores']} cores | env steps/s | ms per env step |",
        "|---|---|---|",
        f"| env workers, random actions (worker CPU) | {e['steps_per_s']:.1f} | {e['wall_ms']:.2f} ({e['env_ms']:.2f}) |",
        f"| acting, no learning (main thread CPU) | {a['steps_per_s']:.1f} | {a['wall_ms']:.2f} ({a['main_ms']:.2f}) |",
        f"| learning, `learn()` (main thread CPU) | {lr['steps_per_s']:.1f} | {lr['wall_ms']:.2f} ({lr['main_ms']:.2f}) |",
        f"| - its learner thread, wall (CPU) | | {lr['learner_wall_ms']:.2f} ({lr['learner_cpu_ms']:.2f}) |",
        f"| - env workers' CPU while learning | | {lr['env_ms']:.2f} |",
        f"| alone: acting forward pass, 1 thread | | {p['act_ms']:.2f} |",
        f"| alone: the loop's own Python (acting phase's main CPU - acting) | | {m['loop_python_ms']:.2f} |",
        f"| alone: sample a batch (main thread) | | {p['sample_ms']:.2f} |",
        f"| alone: update, {out['learner_threads']} learner thread(s) | | {p['update_ms']:.2f} |",
        f"| checkpoint with replay buffer ({c['buffer_mb']:.0f} MiB) | | {1000 * c['checkpoint_s']:.0f} ms each |",
        f"| evaluation, 5 episodes ({c['eval_steps']} steps) | | {c['eval_s']:.1f} s each |",
        f"| **ideal on {out['cores']} cores** (max of chain {m['chain_ms']:.2f}, learner {m['learner_ms']:.2f}, "
        f"work / cores {m['work_per_core_ms']:.2f}) | **{m['ideal_steps_per_s']:.1f}** | |",
        f"| ratio reached by `learn()` | {m['learn_ratio']:.2f} | |",
        f"| with an evaluation per {EVAL_FREQ} and a checkpoint per {SAVE_FREQ} steps | {m['full_steps_per_s']:.1f} "
        f"(ratio {m['full_ratio']:.2f}) | |",
    ]
    pred = out["prediction"]
    rows.append(
        f"| model, CPU only: update = {pred['serial_ms']:.2f} + {pred['parallel_ms']:.2f} / threads ms "
        f"(1 thread {p['update_1_ms']:.2f}, {out['cores']} threads {p['update_all_ms']:.2f}) | | |"
    )
    for n, row in pred["cores"].items():
        rows.append(
            f"| predicted on {n} cores: --n-envs {row['n_envs']}, learner {row['learner_threads']} threads "
            f"| {row['steps_per_s']:.0f} | |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    import sys

    print(table(run(n_envs=int(sys.argv[1]) if len(sys.argv) > 1 else 1)))
