"""The evaluation protocol: how sb3_mario scores an agent (``train``, ``tune``, ``enjoy --protocol`` and the tests).

An agent counts as playing a level when it passes the ALE's standard evaluation (Machado et al. 2018), not when it
replays one path of a deterministic emulator:

- greedy actions, on the env settings saved with the model (action set, frame skip, size, stack, ``repeat_jump`` ...),
  with sticky actions forced to ``p = 0.25`` per emulator frame (:data:`PROTOCOL_STICKY_ACTIONS`);
- each episode starts with 0-30 seeded no-op steps that press no button (:data:`PROTOCOL_NOOP_MAX`);
- episodes are capped at 4000 emulator frames (:data:`PROTOCOL_MAX_FRAMES`), and episode ``i`` of an evaluation with
  seed ``s`` is reset with seed ``s + i``, so no-ops and sticky draws are reproducible; a training run's
  ``stall_steps`` is turned off (an episode ends at the flag, a death or the cap), and so are ``frontier_starts``
  (every episode starts at the level's start) and ``flag_reward`` (returns are the game's);
- the score is the flag rate, then the mean furthest x.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import multiprocessing
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th

from sb3_mario.ddqn.engine import usable_cores
from sb3_mario.envs import make_mario_env, resolve_actions
from sb3_mario.envs.actions import DEFAULT_ACTIONS
from sb3_mario.envs.factory import play_env_kwargs

PROTOCOL_STICKY_ACTIONS = 0.25
PROTOCOL_NOOP_MAX = 30
PROTOCOL_MAX_FRAMES = 4000


class EvaluationStopped(Exception):
    """``should_stop`` said yes during an evaluation: it was abandoned (its worker processes killed)."""


@dataclass(frozen=True)
class EpisodeResult:
    """One protocol episode: its seed, whether it reached the flag, the furthest x, agent steps and no-ops taken, how
    often each action was chosen (``actions[i]``: steps on action ``i``) and Mario's x when it began (the level's
    start: the protocol never restarts from a frontier snapshot)."""

    seed: int
    flag: bool
    max_x: int
    steps: int
    noops: int
    game_return: float
    actions: tuple[int, ...] = ()
    start_x: int = 0


@dataclass(frozen=True)
class ProtocolResult:
    """The episodes of one evaluation under the protocol."""

    episodes: tuple[EpisodeResult, ...]

    @property
    def n(self) -> int:
        return len(self.episodes)

    @property
    def flags(self) -> int:
        return sum(e.flag for e in self.episodes)

    @property
    def flag_rate(self) -> float:
        return self.flags / self.n if self.n else 0.0

    @property
    def mean_x(self) -> float:
        return float(np.mean([e.max_x for e in self.episodes])) if self.n else 0.0

    @property
    def score(self) -> tuple[float, float]:
        """What ranks two evaluations: the flag rate, ties broken by the mean furthest x."""
        return (self.flag_rate, self.mean_x)

    @property
    def action_shares(self) -> tuple[float, ...]:
        """The share of all greedy steps spent on each action: a policy near (0, 1) is "always action 1", which on
        1-1 with ``repeat_jump`` clears without having learned to play (README "Evaluation")."""
        size = max((len(e.actions) for e in self.episodes), default=0)
        counts = np.zeros(size)
        for e in self.episodes:
            counts[: len(e.actions)] += e.actions
        total = counts.sum()
        return tuple(float(c / total) for c in counts) if total else ()

    def action_mix(self, env_kwargs: dict[str, Any] | None = None) -> str:
        """The action shares as text, e.g. ``"[right] 3%, [right, A] 97%"``.

        :param env_kwargs: the env settings the episodes were played with (a model's ``mario_env``): their action set
            (or the default one) names the actions; ``None``: actions are named by index
        """
        actions = None if env_kwargs is None else resolve_actions(env_kwargs.get("actions", DEFAULT_ACTIONS))
        return ", ".join(f"{_action_name(i, actions)} {share:.0%}" for i, share in enumerate(self.action_shares))

    def __add__(self, other: ProtocolResult) -> ProtocolResult:
        return ProtocolResult(self.episodes + other.episodes)

    def flag_interval(self, z: float = 1.959964) -> tuple[float, float]:
        """The Wilson score interval of the flag rate (``z`` 1.96: 95 %), which stays inside [0, 1] and is not empty at
        0 or n flags (the normal approximation is both). By hand: numpy has no binomial interval, and the package
        does not depend on scipy or statsmodels for one formula.

        :param z: the standard normal quantile of the interval's two-sided confidence
        """
        if not self.n:
            return (0.0, 1.0)
        p, n = self.flag_rate, self.n
        center = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return (max(0.0, center - half), min(1.0, center + half))

    def summary(self) -> str:
        return f"{self.flags}/{self.n} flags ({self.flag_rate:.0%}), mean x {self.mean_x:.0f}"


def _action_name(i: int, actions: list[list[str]] | None) -> str:
    return f"[{', '.join(actions[i])}]" if actions is not None and i < len(actions) else f"action {i}"


def protocol_env_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """A model's saved env settings (``mario_env``) turned into the protocol's evaluation env."""
    out = play_env_kwargs(env_kwargs)  # every protocol episode starts at the level's start (no frontier starts)
    frame_skip = int(out.get("frame_skip", 4))
    out.update(
        sticky_actions=PROTOCOL_STICKY_ACTIONS,
        noop_max=PROTOCOL_NOOP_MAX,
        max_episode_steps=math.ceil(PROTOCOL_MAX_FRAMES / frame_skip),
        stall_steps=None,  # a training aid: the protocol's episodes end at the flag, a death or the frame cap
    )
    return out


def default_workers() -> int:
    """Evaluation processes by default (``train``, ``enjoy --protocol``): a run waits while it evaluates (its env
    workers and learner sit idle), so an evaluation may use every CPU this process has, up to 4 (each worker holds an
    emulator and a copy of the network)."""
    return max(1, min(4, usable_cores()))


def evaluate_protocol(
    model: Any,
    env_kwargs: dict[str, Any],
    n_episodes: int,
    seed: int,
    record: list[np.ndarray] | None = None,
    n_workers: int = 1,
    should_stop: Callable[[], bool] | None = None,
) -> ProtocolResult:
    """Play ``n_episodes`` greedy episodes under the protocol, episode ``i`` seeded ``seed + i``.

    :param model: anything with SB3's ``predict(obs, deterministic=True)``; with ``n_workers > 1``, an SB3 model
        whose ``policy`` can be saved (``DDQN``, ``DQN``)
    :param env_kwargs: the model's own env settings (:func:`sb3_mario.make_mario_env` kwargs, with ``env_id``)
    :param n_episodes: episodes to play (>= 1)
    :param seed: seed of the first episode
    :param record: if a list, the RGB frames of every step are appended to it
    :param n_workers: processes playing at once (this one included): the emulator is most of an evaluation's time,
        so on 2 idle cores 2 workers take about half as long. The episodes and their results are the same as with 1
        (each is seeded on its own); extra workers start with ``spawn``, so a script calling this needs the usual
        ``if __name__ == "__main__":`` guard. A worker that dies is replaced by playing its episodes here. Every
        process plays on one torch thread; the caller's thread count is given back afterwards.
    :param should_stop: asked at every step (e.g. "was Ctrl-C pressed?"); once it says yes the evaluation is
        abandoned and :class:`EvaluationStopped` raised, so that stopping never waits for a 50-episode confirmation
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    n_workers = max(1, min(n_workers, n_episodes))
    with _one_torch_thread():
        if n_workers == 1 or record is not None:
            return ProtocolResult(_play(model, env_kwargs, seed, n_episodes, record, should_stop))
        return _play_in_parallel(model, env_kwargs, n_episodes, seed, n_workers, should_stop)


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Play on one torch thread, then give the caller back its own count.

    A greedy step is one frame through a small network: a second thread buys nothing there, and on a busy machine
    (beside a training, or beside the evaluation's own worker processes) torch's other threads wait for cores they
    do not get: 20 protocol episodes took 7 minutes beside a training on 2 cores on torch's 2 threads, ~1.3 minutes
    on one (docs/experiments/2026-12-08-screen-levers-1-1-late.md; bench/README.md, "eval").
    """
    threads = th.get_num_threads()
    th.set_num_threads(1)
    try:
        yield
    finally:
        th.set_num_threads(threads)


def _play(
    model: Any,
    env_kwargs: dict[str, Any],
    seed: int,
    n_episodes: int,
    record: list[np.ndarray] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[EpisodeResult, ...]:
    """Episodes ``seed``, ``seed + 1`` ... under the protocol, in this process."""
    env = make_mario_env(**protocol_env_kwargs(env_kwargs), render_mode="rgb_array" if record is not None else None)
    n_actions = int(env.action_space.n)  # type: ignore[attr-defined]
    scale = float(env_kwargs.get("reward_scale", 1.0))
    episodes = []
    try:
        for i in range(n_episodes):
            obs, info = env.reset(seed=seed + i)
            noops = int(info.get("noops", 0))
            steps, total, done = 0, 0.0, False
            chosen = np.zeros(n_actions, dtype=np.int64)
            while not done:
                if should_stop is not None and should_stop():
                    raise EvaluationStopped
                action, _ = model.predict(obs, deterministic=True)
                obs, reward, terminated, truncated, info = env.step(int(action))
                chosen[int(action)] += 1
                steps += 1
                total += float(reward)
                done = terminated or truncated
                if record is not None:
                    record.append(env.render())  # type: ignore[arg-type]
            flag, max_x, start_x = bool(info["flag_get"]), int(info["max_x_pos"]), int(info.get("start_x", 0))
            episodes.append(EpisodeResult(seed + i, flag, max_x, steps, noops, total / scale, tuple(chosen.tolist()), start_x))
    finally:
        env.close()
    return tuple(episodes)


def _play_in_worker(policy_file: bytes, env_kwargs: dict[str, Any], seed: int, n_episodes: int) -> tuple[EpisodeResult, ...]:
    """A worker process's share: the policy rebuilt from its saved bytes, greedy, one torch thread."""
    th.set_num_threads(1)
    saved = th.load(io.BytesIO(policy_file), map_location="cpu", weights_only=False)
    policy = saved["class"](**saved["data"])
    policy.load_state_dict(saved["state_dict"])
    policy.set_training_mode(False)
    return _play(policy, env_kwargs, seed, n_episodes)


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C reaches the whole process group, and the calling process decides what it means
    (``train`` abandons the evaluation, saves and stops), not the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread while worker processes start: they inherit the mask, so a Ctrl-C that arrives
    before :func:`_ignore_sigint` ran cannot kill one with a traceback, and here it stays pending (delivered when the
    block ends) instead of being lost."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _play_in_parallel(
    model: Any,
    env_kwargs: dict[str, Any],
    n_episodes: int,
    seed: int,
    n_workers: int,
    should_stop: Callable[[], bool] | None = None,
) -> ProtocolResult:
    # SB3's VecEnvs reset finished envs themselves, without the per-episode seed the protocol needs, so the episodes
    # are split into contiguous shares instead: this process plays the first, each worker process one of the others
    policy = model.policy
    buffer = io.BytesIO()
    # the weights a save writes (SB3's get_parameters: a DDQN with ema_decay plays with its weight average)
    state_dict = model.get_parameters()["policy"]
    saved = {"class": type(policy), "data": policy._get_constructor_parameters(), "state_dict": state_dict}
    th.save(saved, buffer)
    bounds = np.linspace(0, n_episodes, n_workers + 1).round().astype(int)
    shares = [(seed + int(a), int(b - a)) for a, b in itertools.pairwise(bounds)]
    pool = _worker_pool(n_workers - 1)
    try:
        with _sigint_blocked():  # new workers start now, deaf to Ctrl-C from their first instruction
            futures = [pool.submit(_play_in_worker, buffer.getvalue(), env_kwargs, s, n) for s, n in shares[1:]]
        episodes = list(_play(model, env_kwargs, *shares[0], should_stop=should_stop))
        while wait(futures, timeout=0.2).not_done:
            if should_stop is not None and should_stop():
                raise EvaluationStopped
        for (s, n), future in zip(shares[1:], futures, strict=True):
            try:
                episodes += future.result()
            except (BrokenProcessPool, OSError) as exc:
                print(f"warning: an evaluation worker failed ({exc}); playing its episodes here", file=sys.stderr)
                episodes += _play(model, env_kwargs, s, n, should_stop=should_stop)
    except BaseException:
        # abandoned (stop requested, Ctrl-C twice, an error here): the workers' episodes are not wanted any more
        close_workers(kill=True)
        raise
    return ProtocolResult(tuple(episodes))


_POOL: ProcessPoolExecutor | None = None
_POOL_SIZE = 0


def _worker_pool(size: int) -> ProcessPoolExecutor:
    """The evaluation worker processes, kept between evaluations: starting one (``spawn``, imports, the env) takes
    ~6 s on this CPU, as long as an episode, so a run pays it once instead of at every evaluation. A broken pool (a
    worker died) or a smaller one is replaced; a larger one serves (an evaluation of fewer episodes than workers)."""
    global _POOL, _POOL_SIZE
    if _POOL is not None and (size > _POOL_SIZE or getattr(_POOL, "_broken", False)):
        close_workers(kill=True)
    if _POOL is None:
        _POOL = ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint)
        _POOL_SIZE = size
    return _POOL


def close_workers(kill: bool = False) -> None:
    """Stop the evaluation worker processes kept by :func:`evaluate_protocol` (they also end with this process).

    :param kill: kill them at once instead of letting them finish what they play
    """
    global _POOL
    pool, _POOL = _POOL, None
    if pool is None:
        return
    if kill:  # ProcessPoolExecutor has no public way to stop running workers before Python 3.14 (kill_workers)
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


__all__ = [
    "PROTOCOL_MAX_FRAMES",
    "PROTOCOL_NOOP_MAX",
    "PROTOCOL_STICKY_ACTIONS",
    "EpisodeResult",
    "EvaluationStopped",
    "ProtocolResult",
    "close_workers",
    "default_workers",
    "evaluate_protocol",
    "protocol_env_kwargs",
]
