"""Collection throughput: agent steps/s (random actions, skip 4) from 1 and 2 envs in SubprocVecEnv workers.

The scaling ratio is 2-env steps/s over 1-env steps/s (target >= 1.8 on 2 cores); no learning, so this is what the
env side can feed a learner.
"""

from __future__ import annotations

import numpy as np

from bench.common import alternate, median_rows, timed, write_result
from sb3_mario import make_mario_vec_env


def run(vec_steps: int = 400, repeats: int = 5) -> dict:
    venvs = {n: make_mario_vec_env(n_envs=n, vec_env="subproc", seed=0) for n in (1, 2)}
    rng = np.random.default_rng(0)

    def collector(n: int):
        venv = venvs[n]
        venv.reset()
        actions = rng.integers(0, 2, size=(vec_steps, n))

        def steps() -> int:
            for a in actions:
                venv.step(a)  # SB3 VecEnvs reset finished envs themselves
            return vec_steps * n

        return steps

    res = alternate({f"{n}_envs_steps_per_s": (lambda n=n: timed(collector(n))) for n in venvs}, repeats=repeats)
    for venv in venvs.values():
        venv.close()
    out = {
        "contenders": res,
        "ratios": {"two_vs_one_env": res["2_envs_steps_per_s"]["median"] / res["1_envs_steps_per_s"]["median"]},
    }
    write_result("collect", out)
    return out


def table(out: dict) -> str:
    c = out["contenders"]
    rows = ["| collection (subproc, random actions) | agent steps/s median | min-max |", "|---|---|---|"]
    rows += median_rows(c, label=lambda n: f"{n.split('_')[0]} env(s)")
    rows.append(f"| scaling 2 / 1 | {out['ratios']['two_vs_one_env']:.2f} | target >= 1.8 (issue 6) |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(table(run()))
