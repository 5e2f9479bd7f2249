"""SB3 callbacks for Mario runs: atomic checkpoints, eval with Mario metrics, training metrics, stop on signal."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback

from sb3_mario._io import atomic_path, atomic_write_text

REPLAY_BUFFER_NAME = "replay_buffer.pkl"


def save_model(model: Any, path: str | Path) -> Path:
    """``model.save`` to a temporary file, then rename: a reader never sees a half-written zip."""
    path = Path(path)
    with atomic_path(path) as tmp:
        model.save(tmp)
    return path


def save_replay_buffer(model: Any, path: str | Path) -> Path:
    """``model.save_replay_buffer`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        model.save_replay_buffer(tmp)
    return path


class AtomicCheckpointCallback(CheckpointCallback):
    """SB3's ``CheckpointCallback`` with atomic writes and one replay buffer.

    Every ``save_freq`` calls, writes ``<save_path>/<prefix>_<steps>_steps.zip``, and with ``save_replay_buffer``
    replaces ``<save_path>/replay_buffer.pkl`` (hundreds of MB: only the newest is kept), then records both with the
    step count in ``<save_path>/latest.yml``. Parameters are those of ``CheckpointCallback``.
    """

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            self.save_now()
        return True

    def save_now(self) -> dict[str, Any]:
        """Write a checkpoint for the current step; return what ``latest.yml`` now says."""
        model_path = save_model(self.model, self._checkpoint_path(extension="zip"))
        latest: dict[str, Any] = {"num_timesteps": int(self.num_timesteps), "model": model_path.name}
        if self.save_replay_buffer and self.model.replay_buffer is not None:  # type: ignore[attr-defined]
            save_replay_buffer(self.model, Path(self.save_path) / REPLAY_BUFFER_NAME)
            latest["replay_buffer"] = REPLAY_BUFFER_NAME
        atomic_write_text(Path(self.save_path) / "latest.yml", yaml.safe_dump(latest))
        if self.verbose >= 1:
            print(f"Saving checkpoint to {model_path}")
        return latest


class SaveBestModel(BaseCallback):
    """``callback_on_new_best`` for ``EvalCallback``: writes ``best_model.zip`` atomically."""

    def __init__(self, path: str | Path, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.path = Path(path)

    def _on_step(self) -> bool:
        save_model(self.model, self.path)
        return True


class MarioEvalCallback(EvalCallback):
    """SB3's ``EvalCallback`` that also logs ``eval/mean_x_pos``, ``eval/max_x_pos`` and ``eval/flag_rate``.

    Parameters are those of ``EvalCallback``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._x_positions: list[int] = []
        self._flags: list[bool] = []

    def load_history(self, path: Path) -> None:
        """Continue the evaluations of an earlier session of the run (``evaluations.npz``): its rows stay in the file
        and its best mean reward stays the bar for ``best_model.zip``. If the number of episodes per evaluation
        changed, the old file is kept as ``evaluations.part<k>.npz`` instead (one array cannot hold both)."""
        if not path.is_file():
            return
        with np.load(path) as data:
            results = data["results"]
            if len(results):
                self.best_mean_reward = float(np.max(results.mean(axis=1)))
            if results.ndim == 2 and results.shape[1] == self.n_eval_episodes:
                self.evaluations_timesteps = data["timesteps"].tolist()
                self.evaluations_results = results.tolist()
                self.evaluations_length = data["ep_lengths"].tolist()
                if "successes" in data.files:
                    self.evaluations_successes = data["successes"].tolist()
                return
        k = 1
        while path.with_name(f"{path.stem}.part{k}.npz").exists():
            k += 1
        path.rename(path.with_name(f"{path.stem}.part{k}.npz"))

    def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        super()._log_success_callback(locals_, globals_)
        if locals_["done"]:
            info = locals_["info"]
            self._x_positions.append(int(info.get("max_x_pos", info.get("x_pos", 0))))
            self._flags.append(bool(info.get("flag_get", False)))

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            self._x_positions, self._flags = [], []
            keep_going = super()._on_step()
            if self._x_positions:
                self.logger.record("eval/mean_x_pos", float(np.mean(self._x_positions)))
                self.logger.record("eval/max_x_pos", max(self._x_positions))
                self.logger.record("eval/flag_rate", float(np.mean(self._flags)))
                self.logger.dump(self.num_timesteps)
            return keep_going
        return True


class MarioMetricsCallback(BaseCallback):
    """Episode metrics of Mario training envs for TensorBoard (means over the last ``window`` episodes).

    Logs ``rollout/ep_x_pos_mean``, ``rollout/ep_max_x_pos_mean``, ``rollout/flag_rate``, ``rollout/best_x_pos``
    (furthest ever), ``rollout/flags`` (total) and ``rollout/world``/``rollout/stage`` of the last episode; reads
    the keys that SB3's Monitor copies into ``info["episode"]`` (see :data:`sb3_mario.envs.MARIO_INFO_KEYS`).
    """

    def __init__(self, window: int = 100, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.x_pos: deque[int] = deque(maxlen=window)
        self.max_x_pos: deque[int] = deque(maxlen=window)
        self.flags: deque[bool] = deque(maxlen=window)
        self.best_x_pos = 0
        self.total_flags = 0

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            episode = info.get("episode")
            if episode is None or "x_pos" not in episode:
                continue
            self.x_pos.append(int(episode["x_pos"]))
            self.max_x_pos.append(int(episode["max_x_pos"]))
            self.flags.append(bool(episode["flag_get"]))
            self.best_x_pos = max(self.best_x_pos, int(episode["max_x_pos"]))
            self.total_flags += bool(episode["flag_get"])
            self.logger.record("rollout/ep_x_pos_mean", float(np.mean(self.x_pos)))
            self.logger.record("rollout/ep_max_x_pos_mean", float(np.mean(self.max_x_pos)))
            self.logger.record("rollout/flag_rate", float(np.mean(self.flags)))
            self.logger.record("rollout/best_x_pos", self.best_x_pos)
            self.logger.record("rollout/flags", self.total_flags)
            self.logger.record("rollout/world", int(episode["world"]))
            self.logger.record("rollout/stage", int(episode["stage"]))
        return True


class StopOnRequest(BaseCallback):
    """Stop ``learn()`` cleanly at the next step once :meth:`request` was called (e.g. from a signal handler)."""

    def __init__(self) -> None:
        super().__init__()
        self.requested: str | None = None

    def request(self, reason: str) -> None:
        self.requested = reason

    def _on_step(self) -> bool:
        return self.requested is None
