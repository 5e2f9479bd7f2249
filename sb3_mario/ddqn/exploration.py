"""Temporally-extended epsilon-greedy ("ez-greedy", Dabney, Ostrovski and Barreto, ICLR 2021).

Plain epsilon-greedy explores one step at a time: a random [right, A] between greedy [right]s is a 4-frame tap,
never the held jump that climbs a staircase. Ez-greedy keeps the coin, but an env whose coin says "explore" repeats
one uniformly random action for ``n`` steps, ``n`` drawn from a zeta distribution ``p(n) ~ n ** -mu`` capped at
``max_duration`` (the paper: ``mu = 2``, cap 10,000), and draws no coin until the repeat ends. A repeat is not cut
at an episode's end (the envs of a VecEnv reset themselves, unseen here): it may go on into the next one. Written
here because SB3 and gymnasium have no such exploration; it needs the per-env state below, which ``DQN.predict`` does
not keep.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from gymnasium import spaces

MAX_DURATION = 10_000  # the paper's cap on a repeat, in agent steps


def sample_duration(mu: float, max_duration: int = MAX_DURATION) -> int:
    """One repeat length from the zeta distribution ``p(n) ~ n ** -mu``, ``1 <= n <= max_duration`` (exact:
    draws above the cap are redrawn, not clipped).

    :param mu: the exponent, > 1
    :param max_duration: the largest length
    :return: the length, in agent steps
    """
    while True:
        n = int(np.random.zipf(mu))
        if n <= max_duration:
            return n


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
        repeat (a random action, a fresh length, this step included), else acts greedily.

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
        self.steps_left[exploring] -= 1
        return actions


__all__ = ["MAX_DURATION", "TemporallyExtendedExploration", "sample_duration"]
