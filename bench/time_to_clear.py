"""Time to a clearing agent: from run folders, the training time of the first confirmed protocol flag rate >= R.

    python -m bench.time_to_clear RUN [RUN ...] [--rate 0.9] [--labels a b ...]

Reads each run's ``evaluations.npz`` (written by ``train``'s protocol evaluation: ``confirm_flag_rate`` of the
fresh-seed confirmations, ``train_seconds`` at each evaluation, evaluation time included) and prints a markdown row
per run: the first confirmed rate >= R with its steps and training time, or "none in T h" with the training time and
steps of the run's newest model (after its last evaluation, a run trains on until its budget ends) and its best flag
rate. Nothing is timed here: the times are those the runs recorded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sb3_mario.errors import Sb3MarioError
from sb3_mario.runs import RunFolder, newest_model_in, read_model_data


def row(folder: Path, rate: float, label: str) -> str:
    path = RunFolder(folder).evaluations
    if not path.is_file():
        return f"| {label} | no evaluations.npz | | | |"
    with np.load(path) as data:
        if "confirm_flag_rate" not in data.files:
            return f"| {label} | evaluations from before the protocol | | | |"
        confirmed = np.nan_to_num(data["confirm_flag_rate"], nan=-1.0)
        steps, seconds, flag_rate = data["timesteps"], data["train_seconds"], data["flag_rate"]
        evals = len(steps)
        counted = f"{evals} evaluation{'' if evals == 1 else 's'}"
        hit = np.flatnonzero(confirmed >= rate)
        best = float(flag_rate.max()) if evals else 0.0
        eval_share = float(data["eval_seconds"][-1] / seconds[-1]) if evals and seconds[-1] > 0 else float("nan")
    if len(hit):
        i = int(hit[0])
        return (
            f"| {label} | **{seconds[i] / 3600:.2f} h** ({seconds[i] / 60:.0f} min) | {int(steps[i])} | "
            f"{confirmed[i]:.0%} of the confirmation | {counted}, {eval_share:.0%} of the time evaluating |"
        )
    last_seconds, last_steps = (float(seconds[-1]), int(steps[-1])) if evals else (0.0, 0)
    try:  # the run's own end: its newest model's training time and steps
        data = read_model_data(newest_model_in(folder))
        last_seconds = max(last_seconds, float(data.get("training_seconds", 0.0)))
        last_steps = max(last_steps, int(data.get("num_timesteps", 0)))
    except Sb3MarioError:
        pass  # no model (yet): the last evaluation's figures
    return (
        f"| {label} | none in {last_seconds / 3600:.2f} h | {last_steps} | best quick rate {best:.0%} | "
        f"{counted}, {eval_share:.0%} of the time evaluating |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.time_to_clear", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--rate", type=float, default=0.9, help="confirmed flag rate that counts (default: 0.9)")
    p.add_argument("--labels", nargs="+", help="one label per run (default: the folder names)")
    args = p.parse_args(argv)
    labels = args.labels or [str(r) for r in args.runs]
    if len(labels) != len(args.runs):
        p.error("--labels: one per run")
    print(f"| run | time to a confirmed >= {args.rate:.0%} | steps | flag rate | evaluation |")
    print("|---|---|---|---|---|")
    for folder, label in zip(args.runs, labels, strict=True):
        print(row(folder, args.rate, label))
    return 0


if __name__ == "__main__":
    sys.exit(main())
