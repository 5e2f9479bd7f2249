"""SB3 callbacks for Mario runs: atomic checkpoints that survive a full disk, evaluation under the protocol with a
stop rule, a wall-clock budget with a progress line, training metrics, stop on signal."""

from __future__ import annotations

import math
import pickle
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from tqdm import tqdm

from sb3_mario._io import atomic_path, atomic_write_text, describe_write_error
from sb3_mario.envs.factory import vec_archive_counts
from sb3_mario.envs.frontier import is_restart
from sb3_mario.errors import SaveError
from sb3_mario.evaluation import EvaluationStopped, ProtocolResult, evaluate_protocol
from sb3_mario.runs import FRONTIER_COUNTS_NAME, LATEST_NAME, REPLAY_BUFFER_NAME


def save_model(model: Any, path: str | Path) -> Path:
    """``model.save`` to a temporary file, then rename: a reader never sees a half-written zip."""
    path = Path(path)
    # the file is opened and closed here: SB3 leaves a path it opened to the garbage collector, whose flush on a full
    # disk would print "Exception ignored in ..." with a traceback instead of our one-line error
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        model.save(f)
    return path


def save_replay_buffer(model: Any, path: str | Path, archive_counts: bool = True) -> Path:
    """``model.save_replay_buffer`` atomically, the buffer marked with the model's step (``saved_at_step``); with
    frontier starts, the archives' counts beside it (:data:`~sb3_mario.runs.FRONTIER_COUNTS_NAME`, what a resume
    restores with the buffer).

    :param archive_counts: ask the env workers for the counts; ``False`` after a worker died (the counts file, if
        any, stays that of the last checkpoint)
    :raises EOFError: an env worker process died before it gave its counts (not an ``OSError``: no write failed)
    """
    path = Path(path)
    env = model.get_env() if archive_counts and hasattr(model, "get_env") else None
    try:  # asked first: a dead worker leaves the buffer and counts on disk as they were
        counts = vec_archive_counts(env) if env is not None else None
    except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
        raise EOFError(f"an env worker process died ({type(exc).__name__})") from exc
    # the step it was saved at travels in the pickle: a resume from an earlier step's model leaves it (train.py)
    buffer = getattr(model, "replay_buffer", None)
    if buffer is not None:
        buffer.saved_at_step = int(model.num_timesteps)
    with atomic_path(path) as tmp:
        model.save_replay_buffer(tmp)
    if counts is not None:
        with atomic_path(path.with_name(FRONTIER_COUNTS_NAME)) as tmp:
            tmp.write_bytes(pickle.dumps(counts))
    return path


class AtomicCheckpointCallback(CheckpointCallback):
    """SB3's ``CheckpointCallback`` with atomic writes and one replay buffer.

    Every ``save_freq`` calls, writes ``<save_path>/<prefix>_<steps>_steps.zip``, and with ``save_replay_buffer``
    replaces ``<save_path>/replay_buffer.pkl`` (hundreds of MB: only the newest is kept), then records both with the
    step count in ``<save_path>/latest.yml``. Parameters are those of ``CheckpointCallback``.

    A checkpoint that cannot be written (full disk, read-only folder, permissions) prints one line saying what and
    how much space it needed, leaves the last good checkpoint and ``latest.yml`` as they were, and training goes on.
    """

    last_good: Path | None = None  # the newest checkpoint written in full (``latest.yml`` names it)
    failures = 0

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            self.try_save()
        return True

    def try_save(self) -> dict[str, Any] | None:
        """:meth:`save_now`, reporting a failed write in one line instead of raising; ``None`` if it failed."""
        try:
            return self.save_now()
        except SaveError as exc:
            self.failures += 1
            kept = f"; the last good checkpoint is {self.last_good}" if self.last_good else ""
            print(f"warning: checkpoint at step {self.num_timesteps} not saved: {exc}{kept}", file=sys.stderr)
            return None

    def save_now(self) -> dict[str, Any]:
        """Write a checkpoint for the current step; return what ``latest.yml`` now says.

        :raises SaveError: with a one-line message naming the file and the space it needed; nothing is half-written
        """
        model_path = Path(self._checkpoint_path(extension="zip"))
        needed = self.last_good.stat().st_size if self.last_good is not None and self.last_good.is_file() else 0
        try:
            save_model(self.model, model_path)
        except OSError as exc:
            raise SaveError(describe_write_error(model_path, exc, needed)) from None
        latest: dict[str, Any] = {"num_timesteps": int(self.num_timesteps), "model": model_path.name}
        if self.save_replay_buffer and self.model.replay_buffer is not None:  # type: ignore[attr-defined]
            buffer_path = Path(self.save_path) / REPLAY_BUFFER_NAME
            try:
                save_replay_buffer(self.model, buffer_path)
            except OSError as exc:
                model_path.unlink(missing_ok=True)  # a model without its buffer would resume from an older buffer
                needed = replay_buffer_nbytes(self.model.replay_buffer)  # type: ignore[attr-defined]
                raise SaveError(describe_write_error(buffer_path, exc, needed)) from None
            latest["replay_buffer"] = REPLAY_BUFFER_NAME
        latest_path = Path(self.save_path) / LATEST_NAME
        try:
            atomic_write_text(latest_path, yaml.safe_dump(latest))
        except OSError as exc:
            raise SaveError(describe_write_error(latest_path, exc)) from None
        self.last_good = model_path
        if self.verbose >= 1:
            print(f"Saving checkpoint to {model_path}")
        return latest


def replay_buffer_nbytes(buffer: Any) -> int:
    """Bytes of the numpy arrays a replay buffer pickles (what saving it needs on disk, roughly)."""
    return sum(v.nbytes for v in vars(buffer).values() if isinstance(v, np.ndarray))


class MarioMetricsCallback(BaseCallback):
    """Episode metrics of Mario training envs for TensorBoard (means over the last ``window`` episodes).

    Logs ``rollout/ep_x_pos_mean``, ``rollout/ep_max_x_pos_mean``, ``rollout/flag_rate``, ``rollout/best_x_pos``
    (furthest ever), ``rollout/flags`` (total) and ``rollout/world``/``rollout/stage`` of the last episode; reads
    the keys that SB3's Monitor copies into ``info["episode"]`` (see :data:`sb3_mario.envs.MARIO_INFO_KEYS`).
    The x means, flag rate and flag total count episodes that began at the level's start, so that runs with and
    without frontier starts compare; episodes restarted from a frontier snapshot (``frontier_starts``) are counted
    apart, in ``rollout/restart_max_x_pos_mean``, ``rollout/restart_flag_rate`` and ``rollout/restart_share``.
    ``rollout/best_x_pos`` is the furthest x of any episode.
    """

    def __init__(self, window: int = 100, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.x_pos: deque[int] = deque(maxlen=window)
        self.max_x_pos: deque[int] = deque(maxlen=window)
        self.flags: deque[bool] = deque(maxlen=window)
        self.restart_flags: deque[bool] = deque(maxlen=window)
        self.restart_max_x_pos: deque[int] = deque(maxlen=window)
        self.restarted: deque[bool] = deque(maxlen=window)
        self.best_x_pos = 0
        self.total_flags = 0

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            episode = info.get("episode")
            if episode is None or "x_pos" not in episode:
                continue
            restart = is_restart(float(episode.get("start_x", 0)))
            self.restarted.append(restart)
            self.best_x_pos = max(self.best_x_pos, int(episode["max_x_pos"]))
            if restart:
                self.restart_max_x_pos.append(int(episode["max_x_pos"]))
                self.restart_flags.append(bool(episode["flag_get"]))
                self.logger.record("rollout/restart_max_x_pos_mean", float(np.mean(self.restart_max_x_pos)))
                self.logger.record("rollout/restart_flag_rate", float(np.mean(self.restart_flags)))
            else:
                self.x_pos.append(int(episode["x_pos"]))
                self.max_x_pos.append(int(episode["max_x_pos"]))
                self.flags.append(bool(episode["flag_get"]))
                self.total_flags += bool(episode["flag_get"])
                self.logger.record("rollout/ep_x_pos_mean", float(np.mean(self.x_pos)))
                self.logger.record("rollout/ep_max_x_pos_mean", float(np.mean(self.max_x_pos)))
                self.logger.record("rollout/flag_rate", float(np.mean(self.flags)))
            self.logger.record("rollout/restart_share", float(np.mean(self.restarted)))
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


class ProtocolEvalCallback(BaseCallback):
    """Evaluate under the protocol (:mod:`sb3_mario.evaluation`), keep the best model, stop when the level is done.

    Every ``eval_freq`` calls once learning has started (``learning_starts``) it plays ``n_eval_episodes`` quick
    episodes. When their flag rate reaches ``confirm_at``, ``confirm_episodes`` more episodes on fresh seeds confirm it.
    A model's score is its flag rate over every episode it played, ties broken by the mean furthest x; the best score so
    far is written to ``best_model_path``. With ``stop_flag_rate``, training stops once a confirmation alone reaches it
    (:attr:`reached`). Every evaluation uses seeds no earlier one used. Before playing, the update in flight (overlapped
    learning) is applied, so the weights evaluated are the weights saved.

    Each evaluation is a row of ``log_path`` (``evaluations.npz``: ``timesteps``, ``flag_rate``, ``mean_x``,
    ``episodes``, ``confirm_flag_rate`` (NaN if none), ``seed``, ``train_seconds``, ``eval_seconds``, and SB3's
    ``successes``/``results``/``ep_lengths`` of the quick episodes); a resumed run continues the file.

    :param env_kwargs: the model's env settings (``make_mario_env`` kwargs with ``env_id``)
    :param eval_freq: evaluate every this many calls
    :param n_eval_episodes: quick episodes per evaluation
    :param confirm_episodes: episodes of a confirmation
    :param confirm_at: quick flag rate that triggers a confirmation (default: ``stop_flag_rate``, else 0.8)
    :param n_workers: processes playing the episodes of an evaluation at once (see :func:`evaluate_protocol`)
    :param should_stop: asked during an evaluation; once it says yes (a stop was requested) the evaluation is
        abandoned, unrecorded, and training stops
    :param stop_flag_rate: stop training once a confirmation reaches this flag rate (``None``: never)
    :param seed: seed of the first evaluation episode
    :param best_model_path: where the best model is saved (``None``: not saved)
    :param log_path: the ``evaluations.npz`` to write (``None``: not written)
    :param clock: the run's :class:`TrainingBudget`, for training time and the evaluation share (optional)
    :param verbose: 1 prints a line per evaluation
    """

    def __init__(
        self,
        env_kwargs: dict[str, Any],
        eval_freq: int,
        n_eval_episodes: int = 5,
        confirm_episodes: int = 50,
        confirm_at: float | None = None,
        n_workers: int = 1,
        should_stop: Callable[[], bool] | None = None,
        stop_flag_rate: float | None = None,
        seed: int = 0,
        best_model_path: str | Path | None = None,
        log_path: str | Path | None = None,
        clock: TrainingBudget | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.env_kwargs = dict(env_kwargs)
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.confirm_episodes = confirm_episodes
        self.n_workers = n_workers
        self.should_stop = should_stop
        self.stop_flag_rate = stop_flag_rate
        self.confirm_at = confirm_at if confirm_at is not None else (stop_flag_rate if stop_flag_rate else 0.8)
        self.next_seed = seed
        self.best_model_path = Path(best_model_path) if best_model_path is not None else None
        self.log_path = Path(log_path) if log_path is not None else None
        self.clock = clock
        self.rows: list[dict[str, Any]] = []
        self.best: tuple[float, float] | None = None
        self.last: ProtocolResult | None = None
        self.reached: ProtocolResult | None = None
        self.eval_seconds = 0.0

    def load_history(self) -> None:
        """Continue ``log_path`` of an earlier session of this run: its rows, best score, seeds and evaluation time.

        If the quick episodes per evaluation changed, the file is kept as ``evaluations.part<k>.npz`` instead (one
        array cannot hold both), and its best score, seeds and time still count. An ``evaluations.npz`` of SB3's
        ``EvalCallback`` (runs before the protocol) is kept the same way.
        """
        if self.log_path is None or not self.log_path.is_file():
            return
        with np.load(self.log_path) as data:
            columns = {k: data[k] for k in data.files}
        rows = []
        if "flag_rate" in columns:
            rows = [{k: v[i].tolist() for k, v in columns.items()} for i in range(len(columns["timesteps"]))]
        if rows:
            self.best = max((r["flag_rate"], r["mean_x"]) for r in rows)
            self.next_seed = max(self.next_seed, int(rows[-1]["next_seed"]))
            self.eval_seconds = float(rows[-1]["eval_seconds"])
        if rows and len(rows[0]["successes"]) == self.n_eval_episodes:
            self.rows = rows
            return
        k = 1
        while self.log_path.with_name(f"{self.log_path.stem}.part{k}.npz").exists():
            k += 1
        self.log_path.rename(self.log_path.with_name(f"{self.log_path.stem}.part{k}.npz"))

    @property
    def best_flag_rate(self) -> float | None:
        return self.best[0] if self.best is not None else None

    def _on_step(self) -> bool:
        if self.eval_freq <= 0 or self.n_calls % self.eval_freq != 0:
            return True
        if self.num_timesteps < getattr(self.model, "learning_starts", 0):
            return True  # nothing learned yet: an untrained network's first preference says nothing about learning
        return self.evaluate()

    def _play(self, n: int) -> ProtocolResult:
        result = evaluate_protocol(
            self.model, self.env_kwargs, n, self.next_seed, n_workers=self.n_workers, should_stop=self.should_stop
        )
        self.next_seed += n
        return result

    def evaluate(self) -> bool:
        """Run one evaluation now; ``False`` once the stop rule is met."""
        started = time.monotonic()
        finish = getattr(self.model, "apply_pending_update", None)
        if finish is not None:
            finish()  # overlapped learning: evaluate the weights a save would write
        seed = self.next_seed
        try:
            quick = self._play(self.n_eval_episodes)
            result, confirmation = quick, None
            if quick.flag_rate >= self.confirm_at:
                confirmation = self._play(self.confirm_episodes)
                result = quick + confirmation
        except EvaluationStopped:
            self.next_seed = seed + self.n_eval_episodes + self.confirm_episodes  # never reuse a seed it may have seen
            self.eval_seconds += time.monotonic() - started
            return False
        self.last = result
        new_best = self.best is None or result.score > self.best
        if new_best:
            self.best = result.score
            if self.best_model_path is not None:
                save_model(self.model, self.best_model_path)
        if confirmation is not None and self.stop_flag_rate is not None and confirmation.flag_rate >= self.stop_flag_rate:
            self.reached = confirmation
        self.eval_seconds += time.monotonic() - started
        train_seconds = self.clock.train_seconds if self.clock is not None else math.nan
        self._record(seed, quick, result, confirmation, train_seconds)
        if self.verbose >= 1:
            confirmed = f", confirmed {confirmation.summary()}" if confirmation is not None else ""
            print(
                f"eval at {self.num_timesteps} steps: {quick.summary()}{confirmed}{' (new best)' if new_best else ''}; "
                f"greedy actions {result.action_mix(self.env_kwargs)}"
            )
        return self.reached is None

    def _record(
        self,
        seed: int,
        quick: ProtocolResult,
        result: ProtocolResult,
        confirmation: ProtocolResult | None,
        train_seconds: float,
    ) -> None:
        self.logger.record("eval/flag_rate", result.flag_rate)
        self.logger.record("eval/mean_x_pos", result.mean_x)
        self.logger.record("eval/max_x_pos", max(e.max_x for e in result.episodes))
        self.logger.record("eval/episodes", result.n)
        for i, share in enumerate(result.action_shares):  # a share near 1 is a constant policy (README "Evaluation")
            self.logger.record(f"eval/action_{i}_share", share)
        if confirmation is not None:
            self.logger.record("eval/confirm_flag_rate", confirmation.flag_rate)
        if train_seconds > 0:
            self.logger.record("eval/time_share", self.eval_seconds / train_seconds)
        self.logger.dump(self.num_timesteps)
        self.rows.append(
            {
                "timesteps": int(self.num_timesteps),
                "flag_rate": result.flag_rate,
                "mean_x": result.mean_x,
                "episodes": result.n,
                "confirm_flag_rate": confirmation.flag_rate if confirmation is not None else math.nan,
                "seed": seed,
                "next_seed": self.next_seed,
                "train_seconds": train_seconds,
                "eval_seconds": self.eval_seconds,
                "successes": [e.flag for e in quick.episodes],
                "results": [e.game_return for e in quick.episodes],
                "ep_lengths": [e.steps for e in quick.episodes],
            }
        )
        if self.log_path is None:
            return
        columns: dict[str, Any] = {key: np.array([row[key] for row in self.rows]) for key in self.rows[0]}
        try:
            with atomic_path(self.log_path) as tmp:
                np.savez(tmp, **columns)
        except OSError as exc:
            print(f"warning: {self.log_path} not updated: {exc}", file=sys.stderr)


class TrainingBudget(BaseCallback):
    """Training wall clock, cumulative over resumes (saved with the model as ``training_seconds``), a wall-clock
    budget, and a one-line progress display.

    :param max_seconds: stop once the run's cumulative training time reaches this (``None``: no limit)
    :param total_timesteps: the step budget (for the progress line)
    :param progress: show the progress line (tqdm): steps, training time, last and best evaluation flag rate, time
        left to the budget
    :param evaluation: the run's :class:`ProtocolEvalCallback`, read for the progress line
    """

    def __init__(
        self,
        max_seconds: float | None = None,
        total_timesteps: int | None = None,
        progress: bool = False,
        evaluation: ProtocolEvalCallback | None = None,
    ) -> None:
        super().__init__()
        self.max_seconds = max_seconds
        self.total_timesteps = total_timesteps
        self.progress = progress
        self.evaluation = evaluation
        self.out_of_time = False
        self._base = 0.0
        self._started = 0.0
        self._bar: tqdm[Any] | None = None

    @property
    def train_seconds(self) -> float:
        """Training time of the whole run so far (earlier sessions included)."""
        return self._base + (time.monotonic() - self._started if self._started else 0.0)

    def _on_training_start(self) -> None:
        self._base = float(getattr(self.model, "training_seconds", 0.0) or 0.0)
        self._started = time.monotonic()
        if self.progress:
            self._bar = tqdm(total=self.total_timesteps, initial=self.model.num_timesteps, unit="step", dynamic_ncols=True)

    def _on_step(self) -> bool:
        seconds = self.train_seconds
        self.model.training_seconds = seconds  # type: ignore[attr-defined]
        if self._bar is not None and self.n_calls % 50 == 0:
            self._bar.n = self.model.num_timesteps
            self._bar.set_postfix_str(self.describe(seconds), refresh=True)
        self.out_of_time = self.max_seconds is not None and seconds >= self.max_seconds
        return not self.out_of_time

    def describe(self, seconds: float) -> str:
        parts = [f"trained {format_hours(seconds)}"]
        evaluation = self.evaluation
        if evaluation is not None and evaluation.last is not None:
            parts.append(f"eval {evaluation.last.flag_rate:.0%} (best {evaluation.best_flag_rate:.0%})")
        if self.max_seconds is not None:
            parts.append(f"{format_hours(max(self.max_seconds - seconds, 0.0))} left")
        return ", ".join(parts)

    def _on_training_end(self) -> None:
        seconds = self.train_seconds
        self.model.training_seconds = seconds  # type: ignore[attr-defined]
        if self._bar is not None:
            self._bar.n = self.model.num_timesteps
            self._bar.set_postfix_str(self.describe(seconds), refresh=True)
            self._bar.close()


def format_hours(seconds: float) -> str:
    """``5400`` -> ``"1.50 h"``, ``90`` -> ``"1.5 min"``."""
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"
