"""Prioritized replay (Schaul et al. 2016, proportional variant) on :class:`FrameStackReplayBuffer`.

SB3 has no prioritized replay, so it is written here: a sum tree over the buffer's (position, env) slots, stratified
proportional sampling, importance-sampling weights, and priority updates that skip slots overwritten since they were
sampled (with overlapped learning the TD errors of a batch come back one update later, when newer transitions may
have replaced some of its slots). Frame dedup and n-step returns are the base buffer's: only which transitions are
drawn changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecNormalize

from sb3_mario.buffers import FrameStackReplayBuffer, ReplaySamples
from sb3_mario.errors import ConfigError


class SumTree:
    """Binary tree whose leaves hold priorities and whose inner nodes hold the sums below them (vectorised).

    :param capacity: number of leaves
    """

    def __init__(self, capacity: int) -> None:
        self.leaves = 1 << max(capacity - 1, 0).bit_length()  # the smallest power of two >= capacity
        self.nodes = np.zeros(2 * self.leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def get(self, index: np.ndarray) -> np.ndarray:
        return self.nodes[np.asarray(index) + self.leaves]

    def set(self, index: np.ndarray, value: np.ndarray | float) -> None:
        """Set leaves ``index`` to ``value`` and update the sums above them."""
        node = np.asarray(index, dtype=np.int64) + self.leaves
        if node.size == 0:
            return
        self.nodes[node] = value
        node = np.unique(node // 2)
        while node[0] >= 1:
            self.nodes[node] = self.nodes[2 * node] + self.nodes[2 * node + 1]
            if node[0] == 1:
                break
            node = np.unique(node // 2)

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """The leaves where the running sum of priorities passes each ``prefix`` (in ``[0, total)``)."""
        prefix = np.array(prefix, dtype=np.float64)
        node = np.ones(prefix.shape, dtype=np.int64)
        while node[0] < self.leaves:
            left = self.nodes[2 * node]
            right = prefix >= left
            prefix = np.where(right, prefix - left, prefix)
            node = 2 * node + right
        return node - self.leaves


class PrioritizedFrameStackReplayBuffer(FrameStackReplayBuffer):
    """:class:`FrameStackReplayBuffer` that draws transition ``i`` with probability ``p_i^alpha / sum_k p_k^alpha``.

    New transitions get the largest priority seen so far; after a gradient step, :meth:`update_priorities` sets
    ``p_i = |TD error| + eps`` for the sampled slots that were not overwritten meanwhile. Samples carry
    importance-sampling weights ``(N P(i))^-beta``, divided by the batch's largest, which DDQN multiplies into each
    sample's loss, and as ``priority_keys`` their flat slot ids (``position * n_envs + env``) and how many times each
    slot had been written when it was sampled. Parameters are :class:`FrameStackReplayBuffer`'s, plus:

    :param alpha: how much priorities count (0: uniform sampling)
    :param beta: importance-sampling correction (1: full correction of the sampling bias)
    :param eps: added to |TD error| so no transition is never drawn again
    """

    samples_after_update = True  # draws follow the priorities the update in flight writes back (DDQN.train)
    transition_arrays = (*FrameStackReplayBuffer.transition_arrays, "generations")

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_steps: int = 1,
        gamma: float = 0.99,
        frame_headroom: float = 1 / 80,
        augment_shift: int = 0,
        alpha: float = 0.6,
        beta: float = 0.4,
        eps: float = 1e-3,
    ) -> None:
        for key, value, low, high in (("alpha", alpha, 0.0, 1.0), ("beta", beta, 0.0, 1.0), ("eps", eps, 1e-12, 1e6)):
            if not low <= value <= high:
                raise ConfigError(f"replay_buffer_kwargs.{key}: must be a number in [{low}, {high}], got {value!r}")
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device,
            n_envs,
            optimize_memory_usage,
            handle_timeout_termination,
            n_steps,
            gamma,
            frame_headroom,
            augment_shift,
        )
        self.alpha, self.beta, self.eps = alpha, beta, eps
        self.tree = SumTree(self.buffer_size * self.n_envs)
        self.max_priority = 1.0
        self.generations = np.zeros((self.buffer_size, self.n_envs), dtype=np.int64)

    def reset(self) -> None:
        super().reset()
        self.tree.nodes[:] = 0.0  # generations go on counting: an update still in flight must not match a new slot

    def add(self, obs: np.ndarray, next_obs: np.ndarray, *args: Any, **kwargs: Any) -> None:
        pos = self.pos
        super().add(obs, next_obs, *args, **kwargs)
        self.generations[pos] += 1
        slots = pos * self.n_envs + np.arange(self.n_envs)
        self.tree.set(slots, np.full(self.n_envs, self.max_priority**self.alpha))

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplaySamples:  # type: ignore[override]
        if self.size() == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        total = self.tree.total
        if not (np.isfinite(total) and total > 0):
            raise RuntimeError(f"prioritized replay: the priorities sum to {total}, nothing can be drawn")
        # stratified: one draw in each of batch_size equal slices of the priority mass
        prefix = (np.arange(batch_size) + np.random.random_sample(batch_size)) * (total / batch_size)
        slots = self.tree.find(np.minimum(prefix, np.nextafter(total, 0)))
        bad = ~self._usable(slots)
        while bad.any():  # evicted frames (very short episodes), or float rounding into an empty leaf: draw again
            self.tree.set(slots[bad & (slots < self.buffer_size * self.n_envs)], 0.0)
            total = self.tree.total
            slots[bad] = self.tree.find(np.random.random_sample(int(bad.sum())) * np.nextafter(total, 0))
            bad = ~self._usable(slots)
        batch_inds, env_inds = np.divmod(slots, self.n_envs)
        samples = self._get_samples(batch_inds, env=env, env_indices=env_inds)
        probabilities = self.tree.get(slots) / total
        unnormalised = (self.size() * self.n_envs * probabilities) ** -self.beta
        weights = (unnormalised / np.max(unnormalised)).astype(np.float32).reshape(-1, 1)
        return samples._replace(weights=self.to_torch(weights), priority_keys=(slots, self.generations[batch_inds, env_inds]))

    def _usable(self, slots: np.ndarray) -> np.ndarray:
        filled = slots < (self.buffer_size if self.full else self.pos) * self.n_envs
        usable = filled & (self.tree.get(slots) > 0)
        batch_inds, env_inds = np.divmod(np.where(filled, slots, 0), self.n_envs)
        return usable & self._valid(batch_inds, env_inds)

    def update_priorities(self, keys: tuple[np.ndarray, np.ndarray], td_errors: np.ndarray) -> int:  # type: ignore[override]
        """Set the priorities of sampled slots from their TD errors, except slots written again since they were
        sampled (their new transition keeps its own priority). Call it from the thread that adds transitions.

        :param keys: the samples' ``priority_keys``: flat slot ids and their generations when sampled
        :return: how many slots were updated
        """
        slots, generations = keys
        batch_inds, env_inds = np.divmod(slots, self.n_envs)
        same = self.generations[batch_inds, env_inds] == generations
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64)) + self.eps
        # a diverged update (inf/NaN TD errors) would poison the tree's sums and every later draw: such a slot gets
        # the largest priority instead, so sampling stays a distribution (the NaN shows in the logged loss)
        finite = np.isfinite(priorities)
        if not finite.all():
            largest = max(self.max_priority, float(np.max(priorities[finite], initial=0.0)))
            priorities = np.where(finite, priorities, largest)
        if same.any():
            # a slot drawn twice in one batch keeps its last TD error
            self.tree.set(slots[same], priorities[same] ** self.alpha)
            self.max_priority = max(self.max_priority, float(priorities[same].max()))
        return int(same.sum())


__all__ = ["PrioritizedFrameStackReplayBuffer", "SumTree"]
