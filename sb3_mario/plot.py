"""``python -m sb3_mario.plot RUN [RUN ...] -o curves.png``: learning curves of one or more runs.

Panels: episode max x_pos, flag rate and return of the training episodes (rolling mean over ``--window`` episodes;
returns in the game's reward units, i.e. divided by the run's ``reward_scale``, so runs with different scales compare;
episodes from the level's start solid, frontier restarts apart, dashed),
and the flag rate of the evaluations (SB3's ``evaluations.npz``), against env steps or, with ``--time``, against
training hours. ``--labels`` names the runs in the legend.

``python -m sb3_mario.plot RUN [RUN ...] --where``: where the training episodes end, per window of env steps (a table
on stdout, no PNG): the pass rate of each stretch of ``--bin`` px of x (of the episodes alive at a stretch's start,
the share that reach its end), the hardest stretches, and their product, an estimate of a level-start episode's flag
rate that frontier restarts feed too.

``python -m sb3_mario.plot RUN [RUN ...] --milestones``: when each run's training evaluations first flagged, first
reached ``--at`` (default 0.8, i.e. 4 of 5), first triggered a confirmation and first reached its stop rule's rate
(``stop_flag_rate`` in its ``config.yml``), in env steps and training hours (evaluations included, and their share):
the figures a recipe's per-seed report quotes (a table on stdout, no PNG).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import yaml

from sb3_mario._io import atomic_path
from sb3_mario.envs.frontier import is_restart
from sb3_mario.errors import ConfigError, Sb3MarioError, print_error
from sb3_mario.params import ENV_PARAMS
from sb3_mario.runs import RunFolder


def run_hyperparams(folder: Path) -> dict[str, Any]:
    """The hyperparameters a run folder's ``config.yml`` holds (its one env block; empty when it has none)."""
    path = RunFolder(folder).config
    if not path.is_file():
        return {}
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise Sb3MarioError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    blocks = [block for block in (config or {}).values() if isinstance(block, dict)] if isinstance(config, dict) else []
    return blocks[0] if len(blocks) == 1 else {}


def reward_scale(folder: Path) -> float:
    """The ``env_kwargs.reward_scale`` a run folder's ``config.yml`` trained with (1.0 when it has none)."""
    env_kwargs = run_hyperparams(folder).get("env_kwargs")
    scale = env_kwargs.get("reward_scale", 1.0) if isinstance(env_kwargs, dict) else 1.0
    path = RunFolder(folder).config
    try:
        return float(ENV_PARAMS["reward_scale"].check("reward_scale", scale))
    except ConfigError as exc:
        raise Sb3MarioError(f"{path}: {exc}") from None


def read_monitor(folder: Path) -> dict[str, np.ndarray]:
    """Episodes of all Monitor CSVs in a run folder, in order: steps, hours, return, game_return, x_pos, flag, restart.

    ``return`` is what Monitor recorded (scaled by the env's ``reward_scale``), ``game_return`` the same in the game's
    reward units.

    A resumed run has one CSV per session (``0.part1.monitor.csv``, ..., ``0.monitor.csv``); sessions are ordered by
    their start time and ``hours`` counts training time only (each session continues where the previous one ended).
    A run started from another run's model (``-i`` of a zip) starts at that model's steps and training time.
    """
    sessions: list[tuple[float, list[dict[str, Any]]]] = []
    for path in RunFolder(folder).monitor_files():
        with open(path) as f:
            header = json.loads(f.readline().lstrip("#") or "{}")
            sessions.append((float(header.get("t_start", 0.0)), list(csv.DictReader(f))))
    if not any(rows for _, rows in sessions):
        raise Sb3MarioError(f"{folder}: no Monitor CSV (*.monitor.csv) in this run folder")
    rows: list[dict[str, Any]] = []
    hours: list[float] = []
    start_steps, offset = RunFolder(folder).read_origin()  # a run started from another run's model goes on from it
    for _, session in sorted(sessions, key=lambda s: s[0]):
        session.sort(key=lambda r: float(r["t"]))
        rows.extend(session)
        hours.extend((offset + float(r["t"])) / 3600 for r in session)
        offset += float(session[-1]["t"]) if session else 0.0
    lengths = np.array([int(r["l"]) for r in rows])
    returns = np.array([float(r["r"]) for r in rows])
    return {
        "steps": start_steps + np.cumsum(lengths),
        "hours": np.array(hours),
        "return": returns,
        "game_return": returns / reward_scale(folder),
        "x_pos": np.array([float(r.get("max_x_pos") or r.get("x_pos") or 0) for r in rows]),
        "flag": np.array([r.get("flag_get") == "True" for r in rows], dtype=float),
        # frontier restarts (Monitor's start_x; CSVs written before it have none: every episode began at the start)
        "restart": np.array([is_restart(float(r.get("start_x") or 0)) for r in rows], dtype=bool),
        "start_x": np.array([float(r.get("start_x") or 0) for r in rows]),
    }


def rolling(values: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def stretch_pass_rates(episodes: dict[str, np.ndarray], bin_px: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pass rates of the stretches ``[e, e + bin_px)`` of x, over episodes as :func:`read_monitor` returns them.

    An episode is at risk in a stretch if it began at or before the stretch's start (level-start episodes count from
    x = 0, frontier restarts from their ``start_x``) and reached it; it passes if it reached the stretch's end. A flag
    reaches every x; an episode cut by the time limit did not pass where it stood. Stretches run from 0 to the one
    that holds the furthest x of the episodes without a flag (past it, only flags pass), so the product of the pass
    rates estimates the share of level-start episodes that flag, from every episode's part of the level (a restart
    adds to the stretches after its start). It assumes the odds of passing a stretch do not depend on how Mario got
    there, and it is the training policy's (exploration included), not the greedy one's.

    :param episodes: ``x_pos`` (furthest x), ``flag``, ``restart`` and ``start_x`` per episode
    :param bin_px: width of a stretch in px of x
    :return: the stretches' starts, how many episodes were at risk in each and how many passed
    """
    flags = episodes["flag"].astype(bool)
    reached = np.where(flags, np.inf, episodes["x_pos"])
    began = np.where(episodes["restart"], episodes["start_x"], 0.0)
    furthest = float(reached[~flags].max()) if (~flags).any() else 0.0
    starts = np.arange(0, furthest // bin_px * bin_px + 1, bin_px, dtype=float)  # the last holds the furthest x
    at_risk = (began[None, :] <= starts[:, None]) & (reached[None, :] >= starts[:, None])
    passed = at_risk & (reached[None, :] >= starts[:, None] + bin_px)
    return starts, at_risk.sum(axis=1), passed.sum(axis=1)


def _steps(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 and n else str(n)


def where_table(folder: Path, step_window: int = 100_000, bin_px: int = 100, hardest: int = 3) -> str:
    """The ``--where`` table of one run: per ``step_window`` env steps, episodes, level-start flags, the flag estimate
    of :func:`stretch_pass_rates` and the ``hardest`` stretches (lowest pass rate among those with >= 10 at risk).

    :param folder: a run folder (its Monitor CSVs, every session's)
    :param step_window: env steps per row; rows are multiples of it in the run's step count (a run started from
        another's model counts on from that model's steps)
    :param bin_px: width of a stretch in px of x
    :param hardest: how many of the hardest stretches a row names
    :return: the table, a title line and a header line first
    """
    episodes = read_monitor(folder)
    lines = [
        f"{folder}: where training episodes end ({bin_px}-px stretches; pass = reached the stretch's end)",
        "steps | episodes (restarts) | level-start flags | flag estimate | hardest stretches: x, pass rate (at risk)",
    ]
    window = (episodes["steps"] - 1) // step_window
    for w in np.unique(window):
        shown = window == w
        part = {key: values[shown] for key, values in episodes.items()}
        starts, at_risk, passed = stretch_pass_rates(part, bin_px)
        rates = np.divide(passed, at_risk, out=np.ones(len(starts)), where=at_risk > 0)
        level = ~part["restart"]
        worst = [i for i in np.argsort(rates, kind="stable") if at_risk[i] >= 10][:hardest]
        hard = ", ".join(f"{starts[i]:.0f}-{starts[i] + bin_px:.0f} {rates[i]:.2f} ({at_risk[i]})" for i in worst)
        lines.append(
            f"{_steps(w * step_window)}-{_steps((w + 1) * step_window)} | {int(shown.sum())} ({int(part['restart'].sum())}) | "
            f"{int(part['flag'][level].sum())}/{int(level.sum())} | {float(np.prod(rates)):.2%} | {hard or '-'}"
        )
    return "\n".join(lines)


def milestones_row(folder: Path, at: float = 0.8) -> list[str]:
    """One run's row of :func:`milestones_table`: each milestone is the first protocol evaluation that meets it, as
    env steps, the run's training wall clock in hours (what ``--max-hours`` counts, evaluations included) and the
    part of it spent evaluating, and its quick score (and confirmation); ``-`` where none did."""
    path = RunFolder(folder).evaluations
    if not path.is_file():
        raise Sb3MarioError(f"{folder}: no evaluations.npz (a run trained with --eval-freq 0?)")
    with np.load(path) as data:
        if "successes" not in data or "confirm_flag_rate" not in data or not len(data["successes"]):
            raise Sb3MarioError(f"{path}: no protocol evaluations (written before 2026-11 or empty)")
        evals = {key: np.asarray(data[key]) for key in data.files}
    # the quick evaluation's episodes (a confirmation's are in flag_rate and episodes, not here)
    quick = np.asarray(evals["successes"], dtype=float)
    rate, confirm = quick.mean(axis=1), evals["confirm_flag_rate"]
    # both cumulative over the run's sessions; evaluations run inside training's wall clock
    train_h, eval_h = evals["train_seconds"] / 3600, evals["eval_seconds"] / 3600

    def cell(hit: np.ndarray) -> str:
        if not hit.any():
            return "-"
        i = int(np.argmax(hit))  # the first that meets it
        n = quick.shape[1]
        when = f"{int(evals['timesteps'][i]):,} ({train_h[i]:.2f} h, {eval_h[i]:.2f} of it evaluating)"
        text = f"{when}: {round(rate[i] * n)}/{n}"
        return text + (f", confirmed {confirm[i]:.0%}" if not np.isnan(confirm[i]) else "")

    confirmed = ~np.isnan(confirm)
    stop = run_hyperparams(folder).get("stop_flag_rate")
    last = np.arange(len(rate)) == len(rate) - 1
    return [
        str(folder),
        str(len(rate)),
        cell(rate > 0),
        cell(rate >= at - 1e-9),
        cell(confirmed),
        cell(confirmed & (confirm >= float(stop) - 1e-9)) if stop is not None else "no stop rule",
        cell(rate == np.max(rate)),
        cell(last),
    ]


def milestones_table(folders: list[Path], at: float = 0.8) -> str:
    """The ``--milestones`` table of runs' protocol evaluations (``evaluations.npz``): one row per run
    (:func:`milestones_row`).

    :param folders: run folders
    :param at: the quick evaluation's flag rate of the second milestone (0.8: 4 of 5 episodes)
    :return: a Markdown table
    """
    lines = [
        f"| run | evaluations | first flag | first at >= {at:.0%} | first confirmation | stop rule reached | "
        "best quick evaluation (first) | last |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(milestones_row(folder, at)) + " |" for folder in folders]
    return "\n".join(lines)


def plot_runs(
    folders: list[Path], out: Path, window: int = 50, wall_clock: bool = False, labels: list[str] | None = None
) -> Path:
    """Write the learning curves of the run ``folders`` to the PNG ``out``; ``labels`` default to the folder names."""
    if labels is not None and len(labels) != len(folders):
        raise Sb3MarioError(f"--labels: {len(labels)} labels for {len(folders)} runs")
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.5))
    x_key = "hours" if wall_clock else "steps"
    for i, folder in enumerate(folders):
        episodes = read_monitor(folder)
        label = folder.name if len({f.name for f in folders}) == len(folders) else str(folder)
        label = labels[i] if labels is not None else label
        color = f"C{i % 10}"  # one colour per run in every panel
        # episodes from the level's start, solid; frontier restarts apart, dashed (they begin further in)
        for shown, style, name in ((~episodes["restart"], "-", label), (episodes["restart"], "--", f"{label} (restarts)")):
            if shown.any():
                for ax, column in ((axes[0], "x_pos"), (axes[1], "flag"), (axes[3], "game_return")):
                    ax.plot(episodes[x_key][shown], rolling(episodes[column][shown], window), style, color=color, label=name)
        evaluations = RunFolder(folder).evaluations
        if evaluations.is_file():
            data = np.load(evaluations)
            if "flag_rate" in data and len(data["flag_rate"]):  # protocol evaluations, with their training time
                x = data["train_seconds"] / 3600 if wall_clock else data["timesteps"]
                axes[2].plot(x, data["flag_rate"], marker="o", color=color, label=label)
            elif "successes" in data and len(data["successes"]):  # SB3's EvalCallback (runs before the protocol)
                flag_rate = np.asarray(data["successes"], dtype=float).mean(axis=1)
                # wall_clock: eval steps map to the wall time at which training reached them
                x = np.interp(data["timesteps"], episodes["steps"], episodes["hours"]) if wall_clock else data["timesteps"]
                axes[2].plot(x, flag_rate, marker="o", color=color, label=label)
    xlabel = "wall clock (hours)" if wall_clock else "env steps"
    titles = [
        "episode max x_pos (flag ~3161)",
        "flag rate, training episodes",
        "flag rate, evaluations (protocol)",
        "episode return (game units)",
    ]
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].axhline(3161, color="gray", linestyle="--", linewidth=0.8)
    axes[1].set_ylim(-0.05, 1.05)
    axes[2].set_ylim(-0.05, 1.05)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sb3_mario.plot", description="Plot learning curves of runs as PNG.")
    p.add_argument("runs", nargs="+", help="run folders (logs/<algo>/<env>_<n>)")
    p.add_argument("-o", "--output", default="learning_curves.png", help="PNG to write (default: %(default)s)")
    p.add_argument("--window", type=int, default=50, help="rolling mean window in episodes (default: 50)")
    p.add_argument("--time", action="store_true", help="wall-clock hours on the x axis instead of env steps")
    p.add_argument("--labels", nargs="+", help="legend names of the runs, in order (default: folder names)")
    p.add_argument("--where", action="store_true", help="print where training episodes end instead of plotting")
    p.add_argument("--step-window", type=int, default=100_000, help="--where: env steps per row (default: 100000)")
    p.add_argument("--bin", type=int, default=100, help="--where: px of x per stretch (default: 100)")
    p.add_argument("--milestones", action="store_true", help="print when each run's evaluations reached what")
    p.add_argument("--at", type=float, default=0.8, help="--milestones: the quick flag rate named (default: 0.8)")
    args = p.parse_args(argv)
    try:
        folders = [Path(r) for r in args.runs]
        for folder in folders:
            if not folder.is_dir():
                raise Sb3MarioError(f"{folder}: not a run folder")
        if args.milestones:
            if not 0.0 < args.at <= 1.0:
                raise Sb3MarioError(f"--at: a flag rate in (0, 1], got {args.at}")
            print(milestones_table(folders, args.at))
            return 0
        if args.where:
            if args.step_window < 1 or args.bin < 1:
                raise Sb3MarioError(f"--step-window and --bin: must be >= 1, got {args.step_window} and {args.bin}")
            print("\n\n".join(where_table(folder, args.step_window, args.bin) for folder in folders))
            return 0
        if Path(args.output).suffix != ".png":
            raise Sb3MarioError(f"-o: expected a .png file name, got {args.output!r}")
        out = plot_runs(folders, Path(args.output), args.window, args.time, args.labels)
    except Sb3MarioError as exc:
        return print_error(exc)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
