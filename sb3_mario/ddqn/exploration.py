"""Temporally-extended epsilon-greedy ("ez-greedy", Dabney, Ostrovski and Barreto, ICLR 2021).

Plain epsilon-greedy explores one step at a time: a random [right, A] between greedy [right]s is a 4-frame tap,
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

import numpy as np
from gymnasium import spaces

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


__all__ = ["MAX_DURATION", "TemporallyExtendedExploration", "sample_duration"]
