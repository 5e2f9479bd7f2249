"""Lab-book tool: what a resume did to frontier restarts. Compares the last N episodes of a run folder's previous
session (``0.part<k>.monitor.csv``, the newest part) with the first N of the current one (``0.monitor.csv``): restart
share, the restarts' start-x quartiles and the level-start episodes' mean furthest x.

    python scripts/resume_restarts.py RUN_FOLDER [N ...]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from sb3_mario.envs.frontier import is_restart


def episodes(path: Path) -> list[dict[str, str]]:
    """The rows of a Monitor CSV (after its ``#{...}`` line)."""
    return list(csv.DictReader(path.read_text().splitlines()[1:]))


def describe(rows: list[dict[str, str]]) -> str:
    """One table row: restart share, the restarts' start-x quartiles, level starts' mean furthest x."""
    start = np.array([float(r["start_x"]) for r in rows])
    restart = np.array([is_restart(x) for x in start])
    furthest = np.array([float(r["max_x_pos"]) for r in rows])
    q = np.percentile(start[restart], [25, 50, 75]) if restart.any() else [np.nan] * 3
    level = furthest[~restart].mean() if (~restart).any() else np.nan
    return f"{restart.mean():.2f} | {q[0]:.0f} / {q[1]:.0f} / {q[2]:.0f} | {level:.0f}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python scripts/resume_restarts.py", description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a run folder resumed at least once")
    p.add_argument("n", type=int, nargs="*", default=[20, 100, 200], help="episodes on each side (default: 20 100 200)")
    args = p.parse_args(argv)
    parts = sorted(args.run.glob("0.part*.monitor.csv"), key=lambda path: int(path.name.split(".")[1][4:]))
    if not parts:
        p.error(f"{args.run}: no 0.part<k>.monitor.csv (was it resumed with -i?)")
    before, after = episodes(parts[-1]), episodes(args.run / "0.monitor.csv")
    print("| episodes | restart share | restart start x, quartiles | level-start episodes' mean furthest x |")
    print("|---|---|---|---|")
    for n in args.n:
        print(f"| last {n} before the stop | {describe(before[-n:])} |")
        print(f"| first {n} after the resume | {describe(after[:n])} |")


if __name__ == "__main__":
    main()
