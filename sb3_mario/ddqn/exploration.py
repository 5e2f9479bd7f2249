"""DDQN's exploration (:class:`Exploration`): epsilon over the transitions seen, and how an exploring env acts.

Temporally-extended epsilon-greedy ("ez-greedy", Dabney, Ostrovski and Barreto, ICLR 2021): plain epsilon-greedy
explores one step at a time: a random [right, A] between greedy [right]s is a 4-frame tap,
never the held jump that climbs a staircase. Ez-greedy keeps the coin, but an env whose coin says "explore" takes one
uniformly random action and holds it for ``n`` more steps, ``n`` drawn from a zeta distribution ``p(n) ~ n ** -mu``
capped at ``max_duration`` (the paper's Appendix B pseudocode: ``1 + n`` steps in all; ``mu = 2``, cap 10,000), and
draws no coin until the repeat ends. The caller cuts a repeat at its env's episode end (:meth:`end_episodes`).
Written here because SB3 and gymnasium have no such exploration; it needs the per-env state below, which
``DQN.predict`` does not keep.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_mario.params import DDQN_PARAMS, check_kwargs

MAX_DURATION = 10_000  # the paper's cap on a repeat, in agent steps


@functools.lru_cache(maxsize=8)
def _zeta_cdf(mu: float, max_duration: int) -> np.ndarray:
    weights = np.arange(1, max_duration + 1, dtype=np.float64) ** -mu
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def sample_duration(mu: float, max_duration: int = MAX_DURATION) -> int:
    """One repeat length from the zeta distribution ``p(n) ~ n ** -mu``, ``1 <= n <= max_duration``, exactly (by the
    inverse of its cumulative distribution: numpy's ``zipf`` has no cap, and redrawing above one takes ~1/(mu - 1)
    draws as ``mu`` nears 1).

    :param mu: the exponent, > 1
    :param max_duration: the largest length
    :return: the length, in agent steps
    """
    cdf = _zeta_cdf(float(mu), int(max_duration))
    index = int(np.searchsorted(cdf, np.random.rand(), side="right"))
    return min(index, max_duration - 1) + 1  # the min guards against rounding in the last cumulative sum


class TemporallyExtendedExploration:
    """The repeats in progress of a batch of envs: their actions and the steps each has left.

    :param mu: the zeta exponent of the repeat lengths (> 1)
    :param action_space: the (Discrete) action space random actions come from
    """

    def __init__(self, mu: float, action_space: spaces.Space) -> None:
        self.mu = mu
        self.action_space = action_space
        self.actions = np.zeros(0, dtype=np.int64)
        self.steps_left = np.zeros(0, dtype=np.int64)

    def act(self, n_envs: int, epsilon: float, greedy: Callable[[], np.ndarray] | None) -> np.ndarray:
        """Actions for one step of ``n_envs`` envs.

        An env in a repeat takes its action again; any other draws a coin and, with probability ``epsilon``, starts a
        repeat (a random action now, held for a fresh length of steps after this one), else acts greedily.

        :param n_envs: number of envs
        :param epsilon: probability that an env not in a repeat starts one
        :param greedy: returns the greedy actions of all envs, ``(n_envs,)``; called only when one is needed
            (``None``: every env explores, as during the burn-in)
        :return: the actions, ``(n_envs,)``
        """
        if self.steps_left.shape != (n_envs,):  # first call, or another number of envs: no repeat carries over
            self.actions = np.zeros(n_envs, dtype=np.int64)
            self.steps_left = np.zeros(n_envs, dtype=np.int64)
        repeating = self.steps_left > 0
        coins = np.random.rand(n_envs)  # one coin per env every step, so the random stream does not depend on state
        starting = ~repeating & ((coins < epsilon) | (greedy is None))
        for i in np.flatnonzero(starting):
            self.actions[i] = self.action_space.sample()
            self.steps_left[i] = sample_duration(self.mu)
        exploring = repeating | starting
        if exploring.all():
            actions = self.actions.copy()
        else:
            assert greedy is not None
            actions = np.where(exploring, self.actions, np.asarray(greedy()).reshape(n_envs))
        self.steps_left[repeating] -= 1  # a repeat starting now takes its random action before its n held steps
        return actions

    def end_episodes(self, dones: np.ndarray) -> None:
        """Cut the repeats of the envs whose episode just ended: a new episode starts with a fresh coin.

        :param dones: one flag per env, ``(n_envs,)``
        """
        if self.steps_left.shape == np.shape(dones):
            self.steps_left[np.asarray(dones, dtype=bool)] = 0


class Exploration:
    """How DDQN explores: epsilon as a function of the env transitions seen, and an explore/exploit coin per env.

    The schedule follows a transition counter the model saves (``exploration_timesteps``), so a loaded or converted
    model carries on where it was. SB3's ``DQN`` follows the progress of the current ``learn()`` and draws one coin
    per batch; neither fits the tutorial's ``eps *= decay`` per transition, so this is written here.

    :param schedule: ``"exponential"`` (the tutorial: ``initial * decay ** t``, floored at the final epsilon) or
        ``"linear"`` (SB3's shape, over ``exploration_fraction`` of the first ``learn()``'s budget)
    :param decay: per-transition factor of the exponential schedule
    :param ez_greedy_mu: temporally-extended epsilon-greedy: an exploring env takes one random action and holds it
        ``n`` more steps (or to its episode's end), ``p(n) ~ n ** -ez_greedy_mu`` (the paper: 2); ``None``: plain
        epsilon-greedy, one random step at a time
    """

    def __init__(self, schedule: str = "exponential", decay: float = 0.99999975, ez_greedy_mu: float | None = None) -> None:
        check_kwargs(DDQN_PARAMS, {"exploration_schedule": schedule, "exploration_decay": decay, "ez_greedy_mu": ez_greedy_mu})
        self.schedule, self.decay, self.ez_greedy_mu = schedule, decay, ez_greedy_mu
        self.repeats: TemporallyExtendedExploration | None = None  # ez-greedy's repeats in progress (never saved)

    def kwargs(self) -> dict[str, Any]:
        """The constructor arguments (what a model saves as ``exploration_kwargs``)."""
        return {"schedule": self.schedule, "decay": self.decay, "ez_greedy_mu": self.ez_greedy_mu}

    def rate(self, timesteps: int, initial: float, final: float, horizon: int | None) -> float:
        """Epsilon after ``timesteps`` transitions; ``horizon``: the linear schedule's length (``None``: not started)."""
        if self.schedule == "exponential":
            return max(final, initial * self.decay**timesteps)
        if horizon is None:
            return initial
        fraction = min(1.0, timesteps / horizon) if horizon > 0 else 1.0
        return initial + fraction * (final - initial)

    def _repeats(self, action_space: spaces.Space) -> TemporallyExtendedExploration:
        assert self.ez_greedy_mu is not None
        if self.repeats is None:
            self.repeats = TemporallyExtendedExploration(self.ez_greedy_mu, action_space)
        return self.repeats

    def act(self, n_envs: int, epsilon: float, action_space: spaces.Space, greedy: Callable[[], np.ndarray]) -> np.ndarray:
        """Actions of ``n_envs`` envs: each draws its own coin (SB3's ``DQN`` draws one per batch) and explores with
        probability ``epsilon``; with ez-greedy an env in a repeat holds its action. ``greedy`` is called only when an
        env needs it."""
        if self.ez_greedy_mu is not None:
            return self._repeats(action_space).act(n_envs, epsilon, greedy)
        explore = np.random.rand(n_envs) < epsilon
        if explore.all():
            return np.array([action_space.sample() for _ in range(n_envs)])
        actions = np.array(greedy()).reshape(n_envs)
        for i in np.flatnonzero(explore):
            actions[i] = action_space.sample()
        return actions

    def burn_in(self, n_envs: int, action_space: spaces.Space) -> np.ndarray | None:
        """With ez-greedy, the burn-in's random actions, held as exploration holds them afterwards; else ``None``
        (SB3's burn-in: one uniform action per step)."""
        return None if self.ez_greedy_mu is None else self._repeats(action_space).act(n_envs, 1.0, greedy=None)

    def end_episodes(self, dones: np.ndarray) -> None:
        """Cut the repeats of the envs whose episode just ended."""
        if self.repeats is not None:
            self.repeats.end_episodes(dones)


__all__ = ["MAX_DURATION", "Exploration", "TemporallyExtendedExploration", "sample_duration"]
