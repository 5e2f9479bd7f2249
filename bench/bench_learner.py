"""Gradient-step latency, batch 32, CnnPolicy on 4x84x84: DDQN (double-Q: 3 forward passes) vs SB3 DQN (2), and DDQN
with the opt-in bf16 autocast, DDQN bf16 on 4x42x42 frames (``screen_size: 42``, the frame size of
universe-starter-agent's A3C and of Pathak et al.'s curiosity agent on Mario), and DDQN with DrQ's random shift
(``augment_shift=4``).

Both learners sample from buffers holding the same transitions; the contenders alternate, warm-up excluded.
"""

from __future__ import annotations

import time

import numpy as np
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.logger import Logger

from bench.common import alternate, median_rows, write_result
from sb3_mario import DDQN, make_mario_env


def fill(model, n: int, rng: np.random.Generator) -> None:
    shape = model.observation_space.shape
    obs = rng.integers(0, 256, size=shape, dtype=np.uint8)
    for t in range(n):
        nxt = np.concatenate([obs[1:], rng.integers(0, 256, size=(1, *shape[1:]), dtype=np.uint8)])
        model.replay_buffer.add(obs, nxt, np.array([t % 2]), np.array([1.0]), np.array([t % 100 == 99]), [{}])
        obs = nxt


def run(steps: int = 60, repeats: int = 5) -> dict:
    env = make_mario_env()
    small = make_mario_env(screen_size=42)
    models = {
        "ddqn": DDQN("CnnPolicy", env, buffer_size=5000, seed=0, device="cpu"),
        "ddqn_bf16": DDQN("CnnPolicy", env, buffer_size=5000, seed=0, device="cpu", learner_kwargs={"autocast_bf16": True}),
        "ddqn_bf16_42": DDQN(
            "CnnPolicy", small, buffer_size=5000, seed=0, device="cpu", learner_kwargs={"autocast_bf16": True}
        ),
        "ddqn_shift4": DDQN(
            "CnnPolicy", env, buffer_size=5000, seed=0, device="cpu", replay_buffer_kwargs={"augment_shift": 4}
        ),
        "sb3_dqn": DQN("CnnPolicy", env, buffer_size=5000, seed=0, device="cpu", learning_rate=2.5e-4, gamma=0.9),
    }
    for model in models.values():
        fill(model, 2000, np.random.default_rng(0))
        model.set_logger(Logger(folder=None, output_formats=[]))

    def timer(model):
        def ms_per_step() -> float:
            start = time.perf_counter()
            model.train(gradient_steps=steps, batch_size=32)
            return (time.perf_counter() - start) / steps * 1000

        return ms_per_step

    res = alternate({name: timer(m) for name, m in models.items()}, repeats=repeats)
    env.close()
    small.close()
    out = {
        "unit": "ms per gradient step (sample + update)",
        "torch_threads": th.get_num_threads(),
        "contenders": res,
        "ratios": {
            "ddqn_vs_sb3_dqn_time": res["ddqn"]["median"] / res["sb3_dqn"]["median"],
            "ddqn_bf16_vs_ddqn_time": res["ddqn_bf16"]["median"] / res["ddqn"]["median"],
            "ddqn_bf16_42_vs_ddqn_bf16_time": res["ddqn_bf16_42"]["median"] / res["ddqn_bf16"]["median"],
            "ddqn_shift4_vs_ddqn_time": res["ddqn_shift4"]["median"] / res["ddqn"]["median"],
        },
    }
    write_result("learner", out)
    return out


def table(out: dict) -> str:
    c = out["contenders"]
    return (
        f"| gradient step, batch 32 ({out['torch_threads']} threads) | median ms | min-max |\n|---|---|---|\n"
        + "".join(row + "\n" for row in median_rows(c))
        + f"| time ratio DDQN / SB3 DQN | {out['ratios']['ddqn_vs_sb3_dqn_time']:.2f} | |\n"
        + f"| time ratio DDQN bf16 / DDQN | {out['ratios']['ddqn_bf16_vs_ddqn_time']:.2f} | |\n"
        + f"| time ratio DDQN bf16 42x42 / DDQN bf16 84x84 | {out['ratios']['ddqn_bf16_42_vs_ddqn_bf16_time']:.2f} | |\n"
        + f"| time ratio DDQN augment_shift 4 / DDQN | {out['ratios']['ddqn_shift4_vs_ddqn_time']:.2f} | |\n"
    )


if __name__ == "__main__":
    print(table(run()))
