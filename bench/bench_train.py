"""End-to-end training throughput (env steps/s, learning included): sb3_mario DDQN vs SB3 DQN vs the tutorial's loop.

Pinned alike: one env each (DDQN steps it in a SubprocVecEnv worker, our design; SB3 DQN in a DummyVecEnv, SB3's
default; the tutorial in-process), batch 32, one gradient step per 3 env transitions, replay capacity 100k, the same
``learning_starts`` reached before timing starts, the same torch thread count, float32, exploration ~1.0 (the
tutorial's and DDQN's exponential schedules are still at 0.997 here; SB3 DQN's is pinned to 1.0), so acting is random
for all. Timed windows alternate between the contenders, several repeats, median reported.

``ddqn`` runs its defaults: gradient steps in a background thread while the env steps (``overlap_learning``, one
learner thread on this 2-core machine, one acting thread), fused Adam. ``ddqn_plain_loop`` is the same model with
``overlap_learning=False`` (SB3's sequential loop): their ratio is what the overlap buys. ``ddqn_bf16`` adds the
opt-in ``autocast_bf16=True`` (network passes of the gradient step in bfloat16): not float32, so not a headline ratio.
"""

from __future__ import annotations

import torch
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env

from bench.common import alternate, median_rows, write_result
from bench.tutorial_baseline import TutorialRunner
from sb3_mario import DDQN, make_mario_env, make_mario_vec_env

BUFFER = 100_000


class SB3Runner:
    """Advance an SB3 model by n env steps per call, continuing where it stopped."""

    def __init__(self, model) -> None:
        self.model = model

    def steps(self, n: int) -> int:
        before = self.model.num_timesteps
        self.model.learn(n, reset_num_timesteps=False)
        return self.model.num_timesteps - before


def contenders(learning_starts: int) -> dict:
    def ddqn(**kwargs) -> DDQN:
        env = make_mario_vec_env(n_envs=1, vec_env="subproc", seed=0)
        return DDQN("CnnPolicy", env, buffer_size=BUFFER, learning_starts=learning_starts, seed=0, device="cpu", **kwargs)

    dqn = DQN(
        "CnnPolicy",
        make_vec_env(make_mario_env, n_envs=1, seed=0),
        buffer_size=BUFFER,
        learning_starts=learning_starts,
        train_freq=3,
        gradient_steps=1,
        batch_size=32,
        gamma=0.9,
        learning_rate=2.5e-4,
        target_update_interval=10_000,
        exploration_initial_eps=1.0,
        exploration_final_eps=1.0,
        seed=0,
        device="cpu",
    )
    return {
        "ddqn": SB3Runner(ddqn()),
        "ddqn_plain_loop": SB3Runner(ddqn(learner_kwargs={"overlap": False})),
        "ddqn_bf16": SB3Runner(ddqn(learner_kwargs={"autocast_bf16": True})),
        "sb3_dqn": SB3Runner(dqn),
        "tutorial": TutorialRunner(burnin=learning_starts),
    }


def run(learning_starts: int = 2000, window: int = 900, repeats: int = 3) -> dict:
    runners = contenders(learning_starts)
    for runner in runners.values():  # fill past learning_starts: every timed step below learns every 3 steps
        runner.steps(learning_starts + 30)

    def timer(runner):
        import time

        def sps() -> float:
            start = time.perf_counter()
            n = runner.steps(window)
            return n / (time.perf_counter() - start)

        return sps

    res = alternate({name: timer(r) for name, r in runners.items()}, repeats=repeats, warmup=0)
    for name in ("ddqn", "ddqn_plain_loop", "ddqn_bf16", "sb3_dqn"):
        runners[name].model.env.close()
    out = {
        "unit": "env steps/s, training included",
        "settings": {
            "learning_starts": learning_starts,
            "window_steps": window,
            "buffer_size": BUFFER,
            "train_freq": 3,
            "batch_size": 32,
            "torch_threads": torch.get_num_threads(),
        },
        "contenders": {
            name: {"steps_per_s": r["values"], "median": r["median"], "min": r["min"], "max": r["max"]}
            for name, r in res.items()
        },
        "ratios": {
            "ddqn_vs_tutorial": res["ddqn"]["median"] / res["tutorial"]["median"],
            "ddqn_vs_sb3_dqn": res["ddqn"]["median"] / res["sb3_dqn"]["median"],
            "ddqn_vs_ddqn_plain_loop": res["ddqn"]["median"] / res["ddqn_plain_loop"]["median"],
            "ddqn_bf16_vs_tutorial": res["ddqn_bf16"]["median"] / res["tutorial"]["median"],
            "ddqn_bf16_vs_sb3_dqn": res["ddqn_bf16"]["median"] / res["sb3_dqn"]["median"],
        },
    }
    write_result("train_throughput", out)
    return out


def table(out: dict) -> str:
    c = out["contenders"]
    rows = ["| training, env steps/s | median | min-max |", "|---|---|---|"]
    rows += median_rows(c)
    rows.append(f"| ratio DDQN / tutorial | {out['ratios']['ddqn_vs_tutorial']:.2f} | target >= 1.5 (issue 6) |")
    rows.append(f"| ratio DDQN / SB3 DQN | {out['ratios']['ddqn_vs_sb3_dqn']:.2f} | target >= 1.5 (issue 6) |")
    rows.append(f"| ratio DDQN / DDQN plain loop | {out['ratios']['ddqn_vs_ddqn_plain_loop']:.2f} | the overlap alone |")
    r = out["ratios"]
    bf16 = f"{r['ddqn_bf16_vs_tutorial']:.2f}, {r['ddqn_bf16_vs_sb3_dqn']:.2f}"
    rows.append(f"| ratio DDQN bf16 / tutorial, / SB3 DQN | {bf16} | opt-in, not float32 |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(table(run()))
