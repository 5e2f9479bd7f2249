"""Run folders and model files: the layout and its names (this module is their one owner), finding the newest
checkpoint, checking a zip before loading it."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import yaml
from stable_baselines3.common.save_util import load_from_zip_file

from sb3_mario._io import atomic_write_text, sweep_temp_files
from sb3_mario.errors import Sb3MarioError
from sb3_mario.portable import numpy2_pickles, portable_custom_objects

CHECKPOINT_DIR = "checkpoints"
LATEST_NAME = "latest.yml"  # in CHECKPOINT_DIR: the newest complete checkpoint and its step count
REPLAY_BUFFER_NAME = "replay_buffer.pkl"  # in CHECKPOINT_DIR: the newest replay buffer (only one is kept)
FRONTIER_COUNTS_NAME = "frontier_counts.pkl"  # in CHECKPOINT_DIR, beside the buffer: the frontier archives' counts
BEST_MODEL_NAME = "best_model.zip"
EVALUATIONS_NAME = "evaluations.npz"
CONFIG_NAME = "config.yml"
MONITOR_GLOB = "*monitor.csv"
CHECKPOINT_STEPS = re.compile(r"_(\d+)_steps\.zip$")  # SB3's CheckpointCallback names: <prefix>_<steps>_steps.zip


class RunFolder:
    """The files of one run folder ``<log_folder>/<algo>/<env_id>_<n>/``.

    :param path: the run folder
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def latest(self) -> Path:
        return self.checkpoints / LATEST_NAME

    @property
    def replay_buffer(self) -> Path:
        return self.checkpoints / REPLAY_BUFFER_NAME

    @property
    def frontier_counts(self) -> Path:
        return self.checkpoints / FRONTIER_COUNTS_NAME

    @property
    def best_model(self) -> Path:
        return self.path / BEST_MODEL_NAME

    @property
    def evaluations(self) -> Path:
        return self.path / EVALUATIONS_NAME

    @property
    def config(self) -> Path:
        """The resolved hyperparameters, in the hyperparameter file's shape (``-conf`` reruns the run)."""
        return self.path / CONFIG_NAME

    @property
    def args(self) -> Path:
        return self.path / "args.yml"

    @property
    def commands(self) -> Path:
        """Every command that trained in this folder, a line each."""
        return self.path / "command.txt"

    @property
    def origin(self) -> Path:
        """Where a run started from another run's model (``-i`` of a zip, which trains in a new folder): that model's
        path, steps and training seconds, so that curves of this folder go on from there."""
        return self.path / "origin.yml"

    def write_origin(self, model: Path, num_timesteps: int, training_seconds: float) -> None:
        """Record that this run folder starts from ``model``, trained ``num_timesteps`` steps in ``training_seconds``."""
        origin = {"model": str(model.resolve()), "num_timesteps": num_timesteps, "training_seconds": training_seconds}
        atomic_write_text(self.origin, yaml.safe_dump(origin, sort_keys=False))

    def read_origin(self) -> tuple[int, float]:
        """Steps and training seconds this run folder started from (0, 0.0 for a run from scratch)."""
        if not self.origin.is_file():
            return 0, 0.0
        try:
            origin = yaml.safe_load(self.origin.read_text()) or {}
            return int(origin.get("num_timesteps", 0)), float(origin.get("training_seconds", 0.0))
        except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError) as exc:
            raise Sb3MarioError(f"{self.origin}: unreadable ({type(exc).__name__})") from None

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    def final_model(self, env_id: str) -> Path:
        return self.path / f"{env_id}.zip"

    def monitor_files(self) -> list[Path]:
        """Monitor CSVs of every session (``<rank>.monitor.csv``, earlier sessions ``<rank>.part<k>.monitor.csv``)."""
        return sorted(self.path.glob(MONITOR_GLOB))

    def sweep_temp_files(self, owned: bool = True) -> str | None:
        """Remove half-written temporary files of a killed save from the run folder and its checkpoints; one line
        saying what was removed, or ``None`` if nothing was.

        :param owned: this process trains in the folder (every temporary file is a leftover); ``False`` (a run that
            resumes from this folder's model in a folder of its own): only those whose writer process is gone
        """
        removed, size = 0, 0
        for folder in (self.path, self.checkpoints):
            n, n_bytes = sweep_temp_files(folder, owned)
            removed, size = removed + n, size + n_bytes
        if not removed:
            return None
        return f"removed {removed} half-written temporary file(s) of a killed save from {self.path} ({size / 1e6:.0f} MB)"

    def keep_monitor_files(self) -> None:
        """Rename ``<rank>.monitor.csv`` of earlier sessions to ``<rank>.part<k>.monitor.csv`` (Monitor truncates)."""
        for path in self.monitor_files():
            rank = path.name.split(".")[0]
            if path.name != f"{rank}.monitor.csv":
                continue
            k = 1
            while (self.path / f"{rank}.part{k}.monitor.csv").exists():
                k += 1
            path.rename(self.path / f"{rank}.part{k}.monitor.csv")


class ModelFileError(Sb3MarioError):
    """A model path that does not exist, is not a zip, or is a damaged one."""


def run_folder_name(log_folder: str | Path, algo: str, env_id: str) -> Path:
    """``<log_folder>/<algo>/<env_id>_<n>`` with ``n`` one more than the highest existing (rl-zoo's numbering)."""
    base = Path(log_folder) / algo
    pattern = re.compile(rf"^{re.escape(env_id)}_(\d+)$")
    taken = [int(m.group(1)) for p in base.glob(f"{env_id}_*") if (m := pattern.match(p.name))]
    return base / f"{env_id}_{max(taken, default=0) + 1}"


def check_model_zip(path: str | Path) -> Path:
    """Raise :class:`ModelFileError` (one line) unless ``path`` is a readable SB3 model zip."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a zip file (truncated or not a saved model)")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelFileError(f"{path}: damaged zip ({exc})") from None
    if bad is not None:
        raise ModelFileError(f"{path}: damaged zip (corrupt member {bad})")
    if "data" not in names or "policy.pth" not in names:
        raise ModelFileError(f"{path}: a zip, but not an SB3 model (no data/policy.pth)")
    return path


def newest_model_in(folder: str | Path) -> Path:
    """The model a run folder should resume from: the newest checkpoint (the one ``latest.yml`` names, or a newer
    zip whose save was killed before ``latest.yml`` named it), or the final model if it is newer."""
    folder = Path(folder)
    # (steps, is final, path): on a tie the final model wins, since a checkpoint is written from inside its step's
    # callback, before SB3 stores that step's transition and advances exploration
    candidates: list[tuple[int, bool, Path]] = []
    run = RunFolder(folder)
    if run.latest.is_file():
        info = yaml.safe_load(run.latest.read_text()) or {}
        candidates.append((int(info.get("num_timesteps", 0)), False, run.checkpoints / str(info.get("model"))))
    # a checkpoint zip that latest.yml does not name yet: the process was killed while saving its replay buffer (the
    # run resumes from it with the buffer of the checkpoint before, if any: one checkpoint's transitions short)
    for path in run.checkpoints.glob("*_steps.zip"):
        if (match := CHECKPOINT_STEPS.search(path.name)) is not None:
            candidates.append((int(match.group(1)), False, path))
    for final in folder.glob("*.zip"):
        if final.name != BEST_MODEL_NAME:
            candidates.append((read_num_timesteps(final), True, final))
    candidates = [c for c in candidates if c[2].is_file()]
    if not candidates:
        raise ModelFileError(f"{folder}: no model zip or checkpoint in this run folder")
    return max(candidates, key=lambda c: (c[0], c[1]))[2]


def read_num_timesteps(path: Path) -> int:
    try:
        with numpy2_pickles():
            data, _, _ = load_from_zip_file(path, load_data=True, device="cpu")
    except Exception:
        return -1
    return int((data or {}).get("num_timesteps", -1))


def read_model_data(path: str | Path) -> dict[str, Any]:
    """The zip's saved attributes (``num_timesteps``, ``mario_env`` ...) without building the model."""
    check_model_zip(path)
    try:
        with numpy2_pickles():
            data, _, _ = load_from_zip_file(path, device="cpu", custom_objects=portable_custom_objects(path))
    except Exception as exc:
        raise ModelFileError(f"{path}: cannot read the model ({type(exc).__name__}: {exc})") from None
    return data or {}


def resolve_model_path(path: str | Path, prefer_best: bool = False) -> Path:
    """A zip, or a run folder (its best model if ``prefer_best`` and present, else its newest model)."""
    path = Path(path)
    if path.is_dir():
        best = RunFolder(path).best_model
        return check_model_zip(best if prefer_best and best.is_file() else newest_model_in(path))
    return check_model_zip(path)
