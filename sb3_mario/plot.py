"""``python -m sb3_mario.plot RUN [RUN ...] -o curves.png``: learning curves of one or more runs.

Panels: episode max x_pos, flag rate and return of the training episodes (rolling mean over ``--window`` episodes;
returns in the game's reward units, i.e. divided by the run's ``reward_scale``, so runs with different scales compare;
episodes from the level's start solid, frontier restarts apart, dashed),
and the flag rate of the evaluations (SB3's ``evaluations.npz``), against env steps or, with ``--time``, against
training hours. ``--labels`` names the runs in the legend.
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


def reward_scale(folder: Path) -> float:
    """The ``env_kwargs.reward_scale`` a run folder's ``config.yml`` trained with (1.0 when it has none)."""
    path = RunFolder(folder).config
    if not path.is_file():
        return 1.0
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise Sb3MarioError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    blocks = [block for block in (config or {}).values() if isinstance(block, dict)] if isinstance(config, dict) else []
    env_kwargs = blocks[0].get("env_kwargs") if len(blocks) == 1 else None
    scale = env_kwargs.get("reward_scale", 1.0) if isinstance(env_kwargs, dict) else 1.0
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
    }


def rolling(values: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


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
    args = p.parse_args(argv)
    try:
        folders = [Path(r) for r in args.runs]
        for folder in folders:
            if not folder.is_dir():
                raise Sb3MarioError(f"{folder}: not a run folder")
        if Path(args.output).suffix != ".png":
            raise Sb3MarioError(f"-o: expected a .png file name, got {args.output!r}")
        out = plot_runs(folders, Path(args.output), args.window, args.time, args.labels)
    except Sb3MarioError as exc:
        return print_error(exc)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
