"""Lab-book tool: a screen of levers as paired branches of one saved run, and their held-out scores.

Every arm goes on from the same saved state (the base run's final model, replay buffer and frontier counts, saved
together at its stop) for the same steps, with its own ``-params`` and training seed; then every arm's last
checkpoints play the same held-out protocol episodes::

    python scripts/screen.py run SCREEN.yml     # trains the arms in turn; run it again to go on after a stop
    python scripts/screen.py score SCREEN.yml   # the table: held-out flags per checkpoint, their sum and spread
    python scripts/screen.py score SCREEN.yml --cached   # the same of the checkpoints scored so far, playing none

SCREEN.yml::

    base: /work/runs/recipe/ddqn/SuperMarioBros-1-1-v0_1   # a stopped run folder (trained with --save-replay-buffer)
    out: /work/runs/screen_800k                            # the arms' run folders go under out/<arm>/
    steps: 50000                                           # env steps per arm
    save_freq: 5000                                        # a checkpoint per ...: what `score` plays
    seed: 0                                                # each arm's training seed unless it names its own
                                                           # (default: the base's: every arm draws the same sticky
                                                           # actions, no-op starts and exploration as the control)
    held_out: {seed: 1000023000, episodes: 20, checkpoints: 10}
    arm_hours: 10                                          # each arm's training-time cap, beyond the base's
    arms:
      control: {}
      control_b: {seed: 2}                                 # the replicate pair: branch-to-branch noise
      flag_reward: {params: ["env_kwargs:{flag_reward: 50.0}"]}

The first ``run`` copies the base's final model, replay buffer and frontier counts to ``out/base/`` (with
``frozen_from.yml``: the folder and step they came from), and every arm and every later ``run`` or ``score`` reads that
copy: the base run may go on (its folder's model and buffer move past the branch point) without changing the screen.
Each arm is an ordinary run of ``python -m sb3_mario.train -i out/base/ENV.zip`` (its command is in its
``command.txt``, its output in ``out/<arm>.log``). ``score`` caches each checkpoint's episodes in
``out/<arm>/held_out.json``, so an interrupted score goes on; the table also gives each arm's level-start training
flags (its Monitor CSV) and, after it, where its training episodes end (``python -m sb3_mario.plot --where``).

Kept out of the package: it drives the CLI and reads run folders, a lab-book procedure rather than a library feature.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3.common.save_util import load_from_pkl

from sb3_mario._io import atomic_write_text, describe_write_error
from sb3_mario.errors import Sb3MarioError, print_error
from sb3_mario.evaluation import default_workers, evaluate_protocol, protocol_env_kwargs
from sb3_mario.plot import read_monitor, where_table
from sb3_mario.portable import numpy2_pickles
from sb3_mario.runs import (
    CHECKPOINT_DIR,
    FRONTIER_COUNTS_NAME,
    REPLAY_BUFFER_NAME,
    newest_model_in,
    read_model_data,
    read_num_timesteps,
)

HELD_OUT_DEFAULTS = {"seed": 1_000_023_000, "episodes": 20, "checkpoints": 10}
CHECKPOINT = re.compile(r"model_(\d+)_steps\.zip$")
FROZEN = "base"  # out/base/: the base's state as the arms branch from it
FROZEN_FROM = "frozen_from.yml"  # in out/base/: the base folder and step it was copied from


def read_screen(path: Path) -> dict[str, Any]:
    """The screen file, checked: the base run's final model and buffer exist, every arm names a seed and params."""
    try:
        screen = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise Sb3MarioError(f"{path}: unreadable ({type(exc).__name__})") from None
    if not isinstance(screen, dict) or not isinstance(screen.get("arms"), dict) or not screen["arms"]:
        raise Sb3MarioError(f"{path}: needs base, out, steps, save_freq and a mapping of arms")
    for key in ("base", "out", "steps", "save_freq"):
        if key not in screen:
            raise Sb3MarioError(f"{path}: missing {key!r}")
    base = frozen = Path(screen["out"]) / FROZEN
    if (frozen / FROZEN_FROM).is_file():
        origin = yaml.safe_load((frozen / FROZEN_FROM).read_text()) or {}
        if Path(str(origin.get("base"))).resolve() != Path(screen["base"]).resolve():
            raise Sb3MarioError(f"{frozen} is a copy of {origin.get('base')}, not of {screen['base']}: another out folder?")
    else:  # not frozen yet: the base run's folder itself (run_arms copies it before the first arm)
        base = Path(screen["base"])
    args = yaml.safe_load((base / "args.yml").read_text()) if (base / "args.yml").is_file() else {}
    screen["env"] = args.get("env", "SuperMarioBros-1-1-v0")
    screen["algo"] = args.get("algo", "ddqn")
    screen["base_zip"] = base / f"{screen['env']}.zip"
    screen["base_buffer"] = base / CHECKPOINT_DIR / REPLAY_BUFFER_NAME
    if not screen["base_zip"].is_file() or not screen["base_buffer"].is_file():
        raise Sb3MarioError(f"{base}: needs its final model and checkpoints/replay_buffer.pkl (a run stopped with both)")
    data = read_model_data(screen["base_zip"])
    screen["base_steps"] = int(data["num_timesteps"])
    screen["base_hours"] = float(data.get("training_seconds") or 0.0) / 3600
    screen["held_out"] = {**HELD_OUT_DEFAULTS, **(screen.get("held_out") or {})}
    rate = base_rate(data)
    for name, arm in screen["arms"].items():
        arm = screen["arms"][name] = dict(arm or {})
        arm.setdefault("seed", screen.get("seed", int(data.get("seed") or 0)))
        arm.setdefault("params", [])
        if not isinstance(arm["params"], list) or not all(isinstance(p, str) for p in arm["params"]):
            raise Sb3MarioError(f"{path}: arm {name!r}: params must be a list of -params strings")
        if rate is not None and not any(p.partition(":")[0].strip() == "learning_rate" for p in arm["params"]):
            arm["params"] = [f"learning_rate:{rate:g}", *arm["params"]]
    return screen


def base_rate(data: dict[str, Any]) -> float | None:
    """The learning rate the base run had at its stop, when it is a schedule (None for a constant).

    An arm is ``-i BASE -n STEPS``, whose total is the base's steps + STEPS: a schedule over that total is not the
    base run's own (the recipe's step at 0.64 of 2M would fall at 0.64 of 706k, i.e. at once). So every arm that
    does not set its own goes on at the rate the base run had at its step, held for the arm's few steps.
    """
    schedule = data.get("learning_rate")
    if not callable(schedule):
        return None
    return float(schedule(float(data.get("_current_progress_remaining", 1.0))))


def freeze_base(screen: dict[str, Any]) -> None:
    """Copy the base's final model, args, replay buffer and frontier counts to ``out/base/`` (once, atomically: a
    temporary folder renamed), and point the screen at the copy.

    Written by hand: the arms must branch from one state even if the base run is resumed meanwhile, and a resumed run
    overwrites its final model and its one replay buffer in place.
    :raises Sb3MarioError: the base's buffer was not saved with its final model (the run went on after its stop), or
        the copy failed (one line, with the space needed on a full disk)
    """
    frozen = Path(screen["out"]) / FROZEN
    if (frozen / FROZEN_FROM).is_file():
        return
    with numpy2_pickles():
        saved = getattr(load_from_pkl(screen["base_buffer"]), "saved_at_step", None)
    if saved is not None and saved != screen["base_steps"]:
        raise Sb3MarioError(
            f"{screen['base']}: its replay buffer was saved at step {saved}, its final model at {screen['base_steps']} "
            "(the run went on after its stop): stop it again, or branch from a copy saved at one step"
        )
    base_dir = screen["base_zip"].parent
    files = [screen["base_zip"].name, "args.yml", f"{CHECKPOINT_DIR}/{REPLAY_BUFFER_NAME}"]
    files.append(f"{CHECKPOINT_DIR}/{FRONTIER_COUNTS_NAME}")
    tmp = frozen.with_name(f"{FROZEN}.tmp")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / CHECKPOINT_DIR).mkdir(parents=True)
        for name in files:
            if (base_dir / name).is_file():
                shutil.copy2(base_dir / name, tmp / name)
        origin = {"base": str(Path(screen["base"]).resolve()), "steps": screen["base_steps"]}
        (tmp / FROZEN_FROM).write_text(yaml.safe_dump(origin))
        shutil.rmtree(frozen, ignore_errors=True)  # a copy without frozen_from.yml is incomplete
        tmp.rename(frozen)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise Sb3MarioError(describe_write_error(frozen, exc, screen["base_buffer"].stat().st_size)) from None
    print(f"the base ({screen['base']} at {screen['base_steps']} steps) copied to {frozen}", flush=True)
    screen["base_zip"] = frozen / screen["base_zip"].name
    screen["base_buffer"] = frozen / CHECKPOINT_DIR / REPLAY_BUFFER_NAME


def arm_run(screen: dict[str, Any], name: str) -> Path:
    """The run folder of arm ``name``."""
    return Path(screen["out"]) / name / screen["algo"] / f"{screen['env']}_1"


def run_arms(screen: dict[str, Any]) -> None:
    """Train each arm to ``base_steps + steps`` in turn, from the frozen base; an arm stopped part-way goes on in its
    folder."""
    freeze_base(screen)
    target = screen["base_steps"] + int(screen["steps"])
    for name, arm in screen["arms"].items():
        folder = arm_run(screen, name)
        try:
            done: int | None = read_num_timesteps(newest_model_in(folder))
        except Sb3MarioError:  # no model there yet: the arm starts from the base
            done = None
        if done is not None and done >= target:
            print(f"{name}: done ({done} steps)")
            continue
        # --max-hours counts the base's training time too: each arm gets arm_hours on top of it
        hours = screen["base_hours"] + float(screen.get("arm_hours", 10.0))
        common = ["--save-freq", str(screen["save_freq"]), "--save-replay-buffer", "--eval-freq", "0"]
        common += ["--max-hours", f"{hours:.4f}"]
        if done is None:
            source = ["-i", str(screen["base_zip"]), "-f", str(Path(screen["out"]) / name), "-n", str(screen["steps"])]
            params = ["-params", *arm["params"]] if arm["params"] else []
        else:  # its folder's config.yml holds its params and total
            source, params = ["-i", str(folder)], []
        command = [sys.executable, "-m", "sb3_mario.train", "--algo", screen["algo"], "--env", screen["env"]]
        command += [*source, "--seed", str(arm["seed"]), *common, *params]
        print(f"{name}: {' '.join(command[1:])}", flush=True)
        log = Path(screen["out"]) / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as out:
            code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT)
        if code != 0:
            raise Sb3MarioError(f"arm {name!r} exited {code}: see {log}")


def checkpoints(screen: dict[str, Any], name: str) -> list[tuple[int, Path]]:
    """The arm's last ``held_out.checkpoints`` checkpoints after the base's step, as (step, path)."""
    found = []
    for path in (arm_run(screen, name) / "checkpoints").glob("model_*_steps.zip"):
        match = CHECKPOINT.search(path.name)
        if match and int(match.group(1)) > screen["base_steps"]:
            found.append((int(match.group(1)), path))
    return sorted(found)[-int(screen["held_out"]["checkpoints"]) :]


def held_out_key(screen: dict[str, Any]) -> str:
    """What a cached score was played on: a checkpoint scored on other episodes is scored again."""
    return f"seed {screen['held_out']['seed']}, {screen['held_out']['episodes']} episodes"


def score_arm(screen: dict[str, Any], name: str, workers: int, play: bool = True) -> dict[str, dict[str, Any]]:
    """Each checkpoint's held-out episodes (flags, mean x, action shares), cached in ``<out>/<arm>/held_out.json``;
    with ``play=False`` only what the cache has."""
    from stable_baselines3 import DQN

    from sb3_mario import DDQN

    held = screen["held_out"]
    cache = Path(screen["out"]) / name / "held_out.json"
    scores: dict[str, dict[str, Any]] = json.loads(cache.read_text()) if cache.is_file() else {}
    key = held_out_key(screen)
    for step, path in checkpoints(screen, name):
        done = scores.get(str(step))
        if (done is not None and done.get("episodes_of") == key) or not play:
            continue
        model: Any = (DDQN if screen["algo"] == "ddqn" else DQN).load(path, device="cpu")  # with its mario_env
        result = evaluate_protocol(model, model.mario_env, int(held["episodes"]), int(held["seed"]), n_workers=workers)
        limit = int(protocol_env_kwargs(model.mario_env)["max_episode_steps"])  # the protocol's cap, not training's
        scores[str(step)] = {
            "episodes_of": key,
            "flags": result.flags,
            "n": result.n,
            "mean_x": result.mean_x,
            "shares": list(result.action_shares),
            # where the episodes without a flag end, and how many of them ran to the step limit (a stand)
            "ends": [e.max_x for e in result.episodes if not e.flag],
            "time_outs": sum(not e.flag and e.steps + e.noops >= limit for e in result.episodes),
        }
        atomic_write_text(cache, json.dumps(scores, indent=1))
        print(f"{name} at {step}: {result.summary()}", flush=True)
    return scores


def arm_speed(screen: dict[str, Any], name: str) -> str:
    """The arm's own training time and env steps per second (its newest model's, less the base's), or ``-``."""
    try:
        data = read_model_data(newest_model_in(arm_run(screen, name)))
    except Sb3MarioError:
        return "-"
    seconds = float(data.get("training_seconds") or 0.0) - screen["base_hours"] * 3600
    steps = int(data["num_timesteps"]) - screen["base_steps"]
    return f"{seconds / 3600:.2f} ({steps / seconds:.0f})" if seconds > 0 and steps > 0 else "-"


def spread(flags: np.ndarray, episodes: int) -> str:
    """The spread of an arm's held-out flags per checkpoint: min-max, their sd, and the sd that chance alone gives.

    Each checkpoint plays ``episodes`` episodes, so with no swing between checkpoints their flag counts would still
    scatter with the binomial sd ``sqrt(episodes p (1 - p))`` at the arm's pooled rate ``p``; an sd well above that
    is a swing of the policy itself, which is what a stabilising lever should cut.

    :param flags: the flags of each checkpoint
    :param episodes: the episodes each checkpoint played
    :return: e.g. ``"0-10, 3.5 (chance 1.9)"``
    """
    rate = flags.sum() / (episodes * len(flags))
    chance = np.sqrt(episodes * rate * (1 - rate))
    return f"{flags.min()}-{flags.max()}, {flags.std():.1f} (chance {chance:.1f})"


def ends_line(name: str, rows: list[dict[str, Any]], cell: int = 100, top: int = 4) -> str:
    """Where an arm's held-out episodes without a flag end: the commonest ``cell``-px cells of their furthest x and how
    many ran to the protocol's step limit (a stand, e.g. at the flagpole's base), or ``""`` where a checkpoint was
    scored before they were kept (they are not played again for it).

    :param name: the arm
    :param rows: its checkpoints' cached scores
    :param cell: the cell width in px
    :param top: how many cells to list
    :return: e.g. ``"control: 3100-3200 12, 1400-1500 9; 10 time-outs"``
    """
    if not rows or any("ends" not in row for row in rows):
        return ""
    cells, counts = np.unique([x // cell * cell for row in rows for x in row["ends"]], return_counts=True)
    order = np.argsort(-counts, kind="stable")[:top]
    listed = ", ".join(f"{cells[i]}-{cells[i] + cell} {counts[i]}" for i in order) or "none"
    return f"{name}: {listed}; {sum(row['time_outs'] for row in rows)} time-outs"


def table(screen: dict[str, Any], workers: int, play: bool = True) -> str:
    """The Markdown table of every arm, then each arm's ``--where`` table; with ``play=False``, of the checkpoints
    already scored (a partial table: ``--cached``)."""
    lines = [
        f"Held-out: {screen['held_out']['episodes']} protocol episodes from seed {screen['held_out']['seed']} on each "
        f"of the last {screen['held_out']['checkpoints']} checkpoints; base {screen['base_zip']} at "
        f"{screen['base_steps']} steps, {screen['steps']} steps per arm.",
        "",
        "| arm | seed | params | held-out flags per checkpoint | sum | spread: min-max, sd (by chance) | mean x | "
        "level-start training flags | greedy shares | training h (env steps/s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    wheres, ends = [], []
    for name, arm in screen["arms"].items():
        scores = score_arm(screen, name, workers, play)
        rows = [scores[str(step)] for step, _ in checkpoints(screen, name) if str(step) in scores]
        rows = [row for row in rows if row.get("episodes_of") == held_out_key(screen)]
        head = f"| {name} | {arm['seed']} | {' '.join(arm['params']) or '-'} | "
        folder = arm_run(screen, name)
        try:
            monitor = read_monitor(folder)
        except Sb3MarioError:  # not started, or no training episode finished
            lines.append(head + "no episodes yet | | | | | | |")
            continue
        level = ~monitor["restart"]
        flagged = int(monitor["flag"][level].sum())
        training = f"{flagged}/{int(level.sum())} ({flagged / max(int(level.sum()), 1):.1%})"
        wheres.append(where_table(folder, step_window=int(screen["steps"])))
        if rows:
            ends.append(ends_line(name, rows))
            flags = np.array([r["flags"] for r in rows])
            shares = np.mean([r["shares"] for r in rows], axis=0)
            held = (
                f"{' '.join(map(str, flags))} | {flags.sum()}/{sum(r['n'] for r in rows)} | "
                f"{spread(flags, int(screen['held_out']['episodes']))} | {np.mean([r['mean_x'] for r in rows]):.0f} | "
            )
            greedy = " / ".join(f"{s:.0%}" for s in shares)
        else:
            held, greedy = "not scored | | | | ", "-"
        lines.append(head + held + f"{training} | {greedy} | {arm_speed(screen, name)} |")
    if any(ends):
        lines += ["", "Held-out episodes without a flag, by where they end (100 px cells; time-outs ran to the step limit):"]
        lines += ["", *(f"    {line}" for line in ends if line)]
    return "\n".join(lines) + "\n\n" + "\n\n".join(wheres)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/screen.py", description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["run", "score"], help="run: train the arms; score: the held-out table")
    p.add_argument("screen", type=Path, help="the screen's YAML")
    p.add_argument("--workers", type=int, default=default_workers(), help="evaluation processes (default: the cores)")
    p.add_argument("--cached", action="store_true", help="score: the table of the checkpoints scored so far, playing none")
    args = p.parse_args(argv)
    try:
        screen = read_screen(args.screen)
        if args.what == "run":
            run_arms(screen)
        else:
            print(table(screen, args.workers, play=not args.cached))
    except Sb3MarioError as exc:
        print_error(exc)
        return 2
    except KeyboardInterrupt:
        print("stopped: run it again to go on", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
