"""Frontier starts: training episodes that begin where earlier episodes got furthest or died.

The agent's own episodes are its demonstrations (Salimans & Chen 2018 start Montezuma's Revenge episodes along a
demonstration; Go-Explore returns to archived states, Ecoffet et al. 2021; Backplay starts near a demonstration's
end, Resnick et al. 2018): while training episodes run, emulator snapshots go into an archive keyed by x cells, and a
reset starts, with probability ``q``, from an archived snapshot instead of the level's start, so that each pit, pipe
and staircase is practised many times an hour instead of once per lucky episode. Neither gymnasium, SB3 nor
gym-super-mario-bros has such a wrapper; nes-py 9's ``dump_state`` / ``load_state`` does the emulator part.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, SupportsFloat

import gymnasium
import numpy as np

from sb3_mario.envs.backend import BackendSnapshot, MarioBackendEnv
from sb3_mario.errors import EnvConfigError
from sb3_mario.params import check_env_kwargs

FRONTIER_CELL = 64  # px of x per archive cell (a 16-px block is 1/4 of it; 1-1 is ~51 cells)
FRONTIER_MIN_X = 2 * FRONTIER_CELL  # nothing archived before this x: the level start practises it already
FRONTIER_PER_CELL = 4  # snapshots kept per cell (a reservoir over the episodes that passed it on the ground)
FRONTIER_MIN_TIME = 100  # no snapshot with less on the game clock: a restart there would be a time-out
FRONTIER_HALF_LIFE = 4  # "frontier": a cell this many cells behind the furthest one is drawn half as often
FRONTIER_DEATH_WINDOW = 3  # "death": deaths in a cell and the 2 after it draw it
FRONTIER_ANCHORS = 64  # "before_death": the newest snapshots from before recorded deaths kept
BEFORE_DEATH_FRAMES = 120  # "before_death": restart ~2 s of game time before a death
_RING_STRIDE = 4  # "before_death": a candidate snapshot every 4 agent steps of the running episode


def is_restart(start_x: float) -> bool:
    """Whether an episode was a frontier restart: the archive holds nothing before :data:`FRONTIER_MIN_X`, and every
    stage starts at x = 40.

    :param start_x: Mario's x when the episode began (Monitor's ``start_x``)
    """
    return start_x >= FRONTIER_MIN_X


@dataclass
class _Entry:
    snapshot: BackendSnapshot
    obs: np.ndarray
    info: dict[str, Any]
    starts: int = 0


@dataclass
class _Episode:
    step: int = 0
    offered: set[int] = field(default_factory=set)
    ring: deque[tuple[int, _Entry]] = field(default_factory=deque)
    over: bool = False


class FrontierStarts(gymnasium.Wrapper):
    """Start a share ``q`` of training episodes from snapshots of earlier ones, leaning toward where they end.

    **Archive.** On each step where Mario is in normal play, on the ground, at ``x >=`` :data:`FRONTIER_MIN_X` and with
    at least :data:`FRONTIER_MIN_TIME` on the clock, the first such step of an episode in each x cell of
    :data:`FRONTIER_CELL` px offers a snapshot to that cell: a reservoir of :data:`FRONTIER_PER_CELL` over the episodes
    that passed (the emulator's state, the frame loop's, and this step's observation and info). Memory: a snapshot is
    ~256 KB (mostly the screen), so 1-1 (~51 cells) holds at most ~50 MB per env, plus ~16 MB of ``before_death``
    anchors. The archive lives in the env's own process (SubprocVecEnv workers keep theirs); a checkpoint saves its
    counts, not its snapshots (:meth:`archive_counts`), so a resumed run weighs cells as before and refills them.

    **Restarts.** At each ``reset``, the level starts as usual; then, when ``q > 0`` and the archive holds anything, a
    coin with probability ``q`` (drawn from this wrapper's generator, seeded by ``reset(seed=...)``) decides whether the
    episode continues from an archived snapshot instead. Where, ``rule`` decides:

    - ``"frontier"``: a cell, toward the furthest archived one (its weight halves every :data:`FRONTIER_HALF_LIFE`
      cells back), then one of its snapshots uniformly;
    - ``"death"``: a cell, toward those where deaths follow (deaths recorded in the cell and the 2 after it, plus 0.1),
      then one of its snapshots uniformly;
    - ``"death_rate"``: as ``"death"``, the deaths divided by ``1 +`` the episodes that passed the cell (restarts
      from it included): about the odds of dying within 3 cells of it. ``"death"`` counts deaths, so the level's
      first pits, where every level start is at risk, draw most restarts; this rule gives a late stretch that kills 1
      of 2 the weight of an early one that does, and new cells (few passes) a high one. Its weights are not divided
      by the restarts (below): the passes already grow with them;
    - ``"before_death"``: one of the newest :data:`FRONTIER_ANCHORS` anchors, each the newest snapshot of its episode
      taken ``before_death_steps`` to twice that before the episode's death (Mario on the ground; none if he was not);
      ``"frontier"`` while there are none.

    Each other weight (a cell's, or an anchor's) is divided by ``sqrt(1 + restarts from it)``, so that what was
    practised a lot gives way. Deaths and restarts are counted over the env's life (no decay): a spot that stops
    killing Mario keeps its count but gathers restarts, which lower its weight. Cells are keyed by x alone: a level's
    other areas (bonus rooms, reached through pipes with ``down``) share keys with the main one.

    The wrapper sits right below the frame stack, so a restart is a ``reset`` for every wrapper above it (the stack
    refills with the restart's frame, no-op starts run, time limit and stall counters start again); the frame loop's
    state (sticky actions' previous buttons, ``repeat_jump``'s counter, ``show_buttons``' byte) is the snapshot's, so
    the observation matches the emulator. Evaluation never restarts: the protocol, ``enjoy`` and
    ``load_pretrained`` build their envs with ``frontier_starts`` 0 (:func:`~sb3_mario.envs.factory.play_env_kwargs`).

    :param env: a grayscale (optionally button-painted) frame env around a :class:`MarioBackendEnv` that supports
        snapshots (nes-py >= 9, a single-stage id)
    :param q: probability that a reset restarts from the archive (0: never, and no coin is drawn)
    :param rule: ``"frontier"``, ``"death"``, ``"death_rate"`` or ``"before_death"``
    :param before_death_steps: agent steps between a ``"before_death"`` anchor and the death it precedes
    """

    def __init__(self, env: gymnasium.Env, q: float, rule: str = "frontier", before_death_steps: int = 30) -> None:
        super().__init__(env)
        check_env_kwargs(frontier_starts=q, frontier_rule=rule)
        backend = env.unwrapped
        if not isinstance(backend, MarioBackendEnv):
            raise EnvConfigError(f"FrontierStarts needs a MarioBackendEnv inside, got {type(backend).__name__}")
        backend.check_snapshots("frontier starts")
        self._backend = backend
        self.q = float(q)
        self.rule = rule
        self.before_death_steps = max(1, int(before_death_steps))
        self.cells: dict[int, list[_Entry]] = {}
        self.passes: Counter[int] = Counter()  # episodes that offered a snapshot to each cell (the reservoir's n)
        self.deaths: Counter[int] = Counter()  # deaths recorded in each cell
        self.starts: Counter[int] = Counter()  # restarts from each cell
        self.anchors: deque[_Entry] = deque(maxlen=FRONTIER_ANCHORS)
        self._rng = np.random.default_rng()
        self._episode = _Episode()

    @property
    def restarts(self) -> int:
        """Episodes started from the archive so far."""
        return sum(self.starts.values())

    def archive_counts(self) -> dict[str, Any]:
        """What a checkpoint saves of the archive (``train --save-replay-buffer``): the counts that weigh the rules
        (passes, deaths and restarts per cell) and the restart generator's state. The snapshots are not in it:
        nes-py 9's emulator state does not pickle; a resumed run's episodes archive them again, each cell as soon as
        an episode passes it (docs/envs.md#frontier-starts)."""
        return {
            "passes": dict(self.passes),
            "deaths": dict(self.deaths),
            "starts": dict(self.starts),
            "rng": self._rng.bit_generator.state,
        }

    def set_archive_counts(self, counts: dict[str, Any]) -> None:
        """Restore :meth:`archive_counts` (a resume); the snapshots fill in again as episodes pass their cells.

        :param counts: from :meth:`archive_counts`
        """
        self.passes = Counter({int(k): int(v) for k, v in counts["passes"].items()})
        self.deaths = Counter({int(k): int(v) for k, v in counts["deaths"].items()})
        self.starts = Counter({int(k): int(v) for k, v in counts["starts"].items()})
        self._rng.bit_generator.state = counts["rng"]

    def episode_state(self) -> tuple[int, set[int], bool]:
        """What :func:`~sb3_mario.envs.snapshots.take_snapshot` saves of this wrapper: the episode's step count, the
        cells it offered and whether it ended (its ``before_death`` candidates are not kept: a restored episode
        starts gathering them again)."""
        return self._episode.step, set(self._episode.offered), self._episode.over

    def set_episode_state(self, state: tuple[int, set[int], bool]) -> None:
        """Restore :meth:`episode_state`.

        :param state: from :meth:`episode_state`
        """
        step, offered, over = state
        self._episode = _Episode(step=step, offered=set(offered), over=over)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            # a generator of its own: the backend's np_random (sticky draws) sees the same draws as without restarts
            self._rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xF5,)))
        obs, info = self.env.reset(seed=seed, options=options)
        self._episode = _Episode()
        if self.q > 0 and self.cells and self._rng.random() < self.q:
            entry = self._choose()
            self._backend.restore(entry.snapshot)
            entry.starts += 1
            self.starts[self._cell(entry.info["x_pos"])] += 1
            obs, info = entry.obs.copy(), dict(entry.info)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        episode = self._episode
        episode.step += 1
        x = int(info.get("x_pos", 0))
        if terminated or truncated:
            if terminated and not info.get("flag_get", False) and not episode.over:
                self._record_death(x)
            episode.over = True
        elif x >= FRONTIER_MIN_X and self._backend.can_snapshot_now(x, FRONTIER_MIN_TIME):
            self._offer(self._cell(x), obs, info)
        return obs, reward, terminated, truncated, info

    @staticmethod
    def _cell(x: int) -> int:
        return int(x) // FRONTIER_CELL

    def _entry(self, obs: np.ndarray, info: dict[str, Any]) -> _Entry:
        return _Entry(self._backend.snapshot(), np.array(obs), dict(info))

    def _offer(self, cell: int, obs: np.ndarray, info: dict[str, Any]) -> None:
        episode = self._episode
        if self.rule == "before_death" and episode.step % _RING_STRIDE == 0:
            episode.ring.append((episode.step, self._entry(obs, info)))
            while episode.ring[0][0] < episode.step - 2 * self.before_death_steps:
                episode.ring.popleft()
        if cell in episode.offered:
            return
        episode.offered.add(cell)
        self.passes[cell] += 1
        entries = self.cells.setdefault(cell, [])
        if len(entries) < FRONTIER_PER_CELL:
            entries.append(self._entry(obs, info))
        else:
            slot = int(self._rng.integers(self.passes[cell]))  # reservoir sampling: each pass kept with equal odds
            if slot < FRONTIER_PER_CELL:
                entries[slot] = self._entry(obs, info)

    def _record_death(self, x: int) -> None:
        self.deaths[self._cell(x)] += 1
        if self.rule == "before_death":
            latest = self._episode.step - self.before_death_steps
            before = [entry for step, entry in self._episode.ring if latest - self.before_death_steps <= step <= latest]
            if before:
                self.anchors.append(before[-1])

    def _choose(self) -> _Entry:
        if self.rule == "before_death" and self.anchors:
            weights = np.array([1.0 / math.sqrt(1 + entry.starts) for entry in self.anchors])
            return self.anchors[int(self._rng.choice(len(self.anchors), p=weights / weights.sum()))]
        cells = sorted(self.cells)
        index = np.array(cells, dtype=float)
        if self.rule in ("death", "death_rate"):
            weights = 0.1 + np.array([sum(self.deaths[c + k] for k in range(FRONTIER_DEATH_WINDOW)) for c in cells])
        else:
            weights = 2.0 ** ((index - index.max()) / FRONTIER_HALF_LIFE)
        if self.rule == "death_rate":
            weights /= 1.0 + np.array([self.passes[c] for c in cells], dtype=float)
        else:
            weights /= np.sqrt(1.0 + np.array([self.starts[c] for c in cells], dtype=float))
        entries = self.cells[cells[int(self._rng.choice(len(cells), p=weights / weights.sum()))]]
        return entries[int(self._rng.integers(len(entries)))]


__all__ = ["FRONTIER_CELL", "FRONTIER_MIN_X", "FrontierStarts", "is_restart"]
