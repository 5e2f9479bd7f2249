"""A replay buffer for stacked uint8 frames that stores each distinct frame once; the samples every DDQN buffer gives."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_mario.augment import draw_shifts, random_shift
from sb3_mario.errors import ConfigError
from sb3_mario.params import DDQN_PARAMS, check_kwargs


class ReplaySamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` plus each sample's loss weight (ones, unless the buffer prioritizes) and what the
    buffer needs back with the TD errors to update priorities (``None``: nothing; see :meth:`update_priorities`)."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None
    weights: th.Tensor
    priority_keys: Any = None


def with_weights(samples: ReplayBufferSamples | ReplaySamples) -> ReplaySamples:
    """Samples of any SB3 buffer as :class:`ReplaySamples` (weights of one)."""
    if isinstance(samples, ReplaySamples):
        return samples
    return ReplaySamples(*samples, weights=th.ones_like(samples.rewards))


class FrameStackReplayBuffer(ReplayBuffer):
    """Replay buffer for frame-stacked image observations ``(stack, height, width)`` that stores each frame once.

    Consecutive observations of a frame-stacked env share ``stack - 1`` frames, and ``next_obs`` of one transition
    is ``obs`` of the next. Each env gets a ring of frames; a transition keeps the id of the newest frame of its
    ``next_obs`` plus two small offset vectors, and stacks are rebuilt at sample time. Sharing is decided by
    comparing pixels, never by trusting episode flags, so what comes back is bit-identical to what was added (across
    episode ends, truncations, several envs, wrap-around and save/load) for any env.

    About 7.2 KB per transition for 4x84x84 (SB3's ``ReplayBuffer``: 56.4 KB, with ``optimize_memory_usage``: 28.2 KB).
    The frame ring holds ``buffer_size * (1 + frame_headroom)`` frames: an episode costs one frame more than its
    length (its first frame), so with episodes shorter than ``1 / frame_headroom`` steps on average the oldest
    transitions are evicted a little before ``buffer_size`` is reached (they are never sampled once their frames are
    overwritten).

    N-step returns are computed at sample time (as SB3's ``NStepReplayBuffer``), with the matching ``discounts``.
    With ``augment_shift``, sampled observations are shifted at sample time (DrQ, :mod:`sb3_mario.augment`).

    :param buffer_size: max number of transitions
    :param observation_space: a ``Box`` of uint8 with shape ``(stack, height, width)``
    :param action_space: action space
    :param device: PyTorch device of the sampled tensors
    :param n_envs: number of parallel envs
    :param optimize_memory_usage: accepted for compatibility and ignored: every frame is already stored once
    :param handle_timeout_termination: treat timeouts (``info["TimeLimit.truncated"]``) as non-terminal
    :param n_steps: n-step return horizon (1: plain one-step targets)
    :param gamma: discount used for n-step returns (must match the algorithm's)
    :param frame_headroom: extra frame slots as a fraction of ``buffer_size``
    :param augment_shift: DrQ's random shift (Kostrikov et al., 2021; Atari: 4): every sampled observation and next
        observation is shifted by up to this many pixels, each its own draw from NumPy's generator; 0: none
    """

    augment_shift: int = 0  # also for buffers pickled before the option (their instances lack the attribute)
    samples_after_update = False  # draws do not depend on the TD errors of the update in flight (DDQN.train)

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
    ) -> None:
        check_frame_stack_space(observation_space)
        check_kwargs(
            DDQN_PARAMS, {"n_steps": n_steps, "gamma": gamma, "buffer_size": buffer_size, "augment_shift": augment_shift}
        )
        if not 0 <= frame_headroom <= 1:
            raise ConfigError(f"frame_headroom must be in [0, 1], got {frame_headroom!r}")
        # BaseBuffer, not ReplayBuffer.__init__: that would allocate full observation arrays.
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device, n_envs=n_envs)
        self.buffer_size = max(buffer_size // n_envs, 1)
        self.optimize_memory_usage = False
        self.handle_timeout_termination = handle_timeout_termination
        self.n_steps = n_steps
        self.gamma = gamma
        self.augment_shift = augment_shift
        self.stack, height, width = self.obs_shape
        # 2 * stack + 1 slots: one transition written from scratch (obs and next_obs unrelated) always fits
        self.n_frames = self.buffer_size + int(np.ceil(self.buffer_size * frame_headroom)) + 2 * self.stack + 1
        self.frames = np.zeros((self.n_envs, self.n_frames, height, width), dtype=np.uint8)
        self.frames_written = np.zeros(self.n_envs, dtype=np.int64)
        # per transition: global id of the newest next_obs frame, and how far back each stacked frame is
        self.next_ids = np.zeros((self.buffer_size, self.n_envs), dtype=np.int64)
        self.obs_back = np.zeros((self.buffer_size, self.n_envs, self.stack), dtype=np.uint8)
        self.next_back = np.zeros((self.buffer_size, self.n_envs, self.stack), dtype=np.uint8)
        self.actions = np.zeros(
            (self.buffer_size, self.n_envs, self.action_dim), dtype=self._maybe_cast_dtype(action_space.dtype)
        )
        self.rewards = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)
        self.dones = np.zeros((self.buffer_size, self.n_envs), dtype=np.bool_)
        self.timeouts = np.zeros((self.buffer_size, self.n_envs), dtype=np.bool_)
        # the last next_obs of each env and its frame ids: the next obs usually continues from it
        self._last_next_obs = np.zeros((self.n_envs, *self.obs_shape), dtype=np.uint8)
        self._last_next_ids = np.full((self.n_envs, self.stack), -1, dtype=np.int64)

    # arrays with a row per transition slot (``buffer_size`` rows): a pickle keeps only the rows written so far
    transition_arrays: tuple[str, ...] = ("next_ids", "obs_back", "next_back", "actions", "rewards", "dones", "timeouts")

    def __getstate__(self) -> dict[str, Any]:
        """What pickling writes (``save_replay_buffer``): the transitions and frames written so far, not the whole
        capacity (a checkpoint at 6k of 100k transitions writes ~6 % of the full buffer's bytes); the arrays get
        their capacity back when loaded (:meth:`__setstate__`)."""
        state = self.__dict__.copy()
        rows = self.buffer_size if self.full else self.pos
        for key in self.transition_arrays:
            state[key] = state[key][:rows]
        written = int(min(int(np.max(self.frames_written, initial=0)), self.n_frames))
        state["frames"] = self.frames[:, :written]
        state["_trimmed"] = True
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Load a pickled buffer: a trimmed one (:meth:`__getstate__`) gets its arrays' capacity back, zero-filled
        past what was written; a full-capacity one (saved before trimming) loads as it is."""
        trimmed = state.pop("_trimmed", False)
        self.__dict__.update(state)
        if not trimmed:
            return
        for key in self.transition_arrays:
            setattr(self, key, _padded(getattr(self, key), 0, self.buffer_size))
        self.frames = _padded(self.frames, 1, self.n_frames)

    def nbytes(self) -> int:
        """Bytes of every array the buffer holds."""
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))

    def bytes_per_transition(self) -> float:
        """:meth:`nbytes` divided by the capacity in transitions."""
        return self.nbytes() / (self.buffer_size * self.n_envs)

    def reset(self) -> None:
        super().reset()
        self.frames_written[:] = 0
        self._last_next_ids[:] = -1

    def _write(self, env: int, frame: np.ndarray) -> int:
        frame_id = int(self.frames_written[env])
        self.frames[env, frame_id % self.n_frames] = frame
        self.frames_written[env] = frame_id + 1
        return frame_id

    def _write_stack(self, env: int, stack: np.ndarray) -> np.ndarray:
        """Write a stack's frames, sharing a slot between equal neighbours (reset padding repeats the first frame)."""
        ids = np.empty(self.stack, dtype=np.int64)
        for i in range(self.stack):
            ids[i] = ids[i - 1] if i > 0 and np.array_equal(stack[i], stack[i - 1]) else self._write(env, stack[i])
        return ids

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        obs = np.asarray(obs).reshape((self.n_envs, *self.obs_shape))
        next_obs = np.asarray(next_obs).reshape((self.n_envs, *self.obs_shape))
        for env in range(self.n_envs):
            if self._last_next_ids[env, 0] >= 0 and np.array_equal(obs[env], self._last_next_obs[env]):
                obs_ids = self._last_next_ids[env].copy()
            else:
                obs_ids = self._write_stack(env, obs[env])
            if np.array_equal(next_obs[env, :-1], obs[env, 1:]):
                next_ids = np.append(obs_ids[1:], self._write(env, next_obs[env, -1]))
            else:
                next_ids = self._write_stack(env, next_obs[env])
            newest = next_ids.max()
            self.next_ids[self.pos, env] = newest
            self.obs_back[self.pos, env] = newest - obs_ids
            self.next_back[self.pos, env] = newest - next_ids
            self._last_next_ids[env] = next_ids
            self._last_next_obs[env] = next_obs[env]
        self.actions[self.pos] = np.asarray(action).reshape((self.n_envs, self.action_dim))
        self.rewards[self.pos] = np.asarray(reward)
        self.dones[self.pos] = np.asarray(done)
        if self.handle_timeout_termination:
            self.timeouts[self.pos] = [info.get("TimeLimit.truncated", False) for info in infos]
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True
            self.pos = 0

    def _valid(self, batch_inds: np.ndarray, env_inds: np.ndarray) -> np.ndarray:
        """Whether every frame of these transitions is still in the ring (not overwritten by newer frames)."""
        back = np.maximum(self.obs_back[batch_inds, env_inds].max(axis=1), self.next_back[batch_inds, env_inds].max(axis=1))
        oldest = self.next_ids[batch_inds, env_inds] - back
        return oldest >= self.frames_written[env_inds] - self.n_frames

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplaySamples:  # type: ignore[override]
        upper = self.buffer_size if self.full else self.pos
        if upper == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        batch_inds = np.random.randint(0, upper, size=batch_size)
        env_inds = np.random.randint(0, self.n_envs, size=batch_size)
        invalid = ~self._valid(batch_inds, env_inds)
        while invalid.any():  # evicted early (very short episodes): draw again; the newest transitions are always valid
            batch_inds[invalid] = np.random.randint(0, upper, size=int(invalid.sum()))
            env_inds[invalid] = np.random.randint(0, self.n_envs, size=int(invalid.sum()))
            invalid[invalid] = ~self._valid(batch_inds[invalid], env_inds[invalid])
        return self._get_samples(batch_inds, env=env, env_indices=env_inds)

    def _stacks(self, back: np.ndarray, batch_inds: np.ndarray, env_inds: np.ndarray) -> np.ndarray:
        ids = self.next_ids[batch_inds, env_inds][:, None] - back[batch_inds, env_inds].astype(np.int64)
        return self.frames[env_inds[:, None], ids % self.n_frames]

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray, env: VecNormalize | None = None, env_indices: np.ndarray | None = None
    ) -> ReplaySamples:
        if env_indices is None:
            env_indices = np.random.randint(0, self.n_envs, size=len(batch_inds))
        env_col = env_indices[:, None]
        # n-step window, stopped at the first done/timeout; the newest transition is treated as truncated so the
        # window never runs into the oldest data (same logic as SB3's NStepReplayBuffer)
        indices = (batch_inds[:, None] + np.arange(self.n_steps)[None, :]) % self.buffer_size
        dones_seq = self.dones[indices, env_col]
        stop_seq = dones_seq | self.timeouts[indices, env_col] | (indices == (self.pos - 1) % self.buffer_size)
        last = np.where(stop_seq.any(axis=1), stop_seq.argmax(axis=1), self.n_steps - 1)
        mask = np.arange(self.n_steps)[None, :] <= last[:, None]
        rewards_seq = self._normalize_reward(self.rewards[indices, env_col], env)
        returns = (rewards_seq * (self.gamma ** np.arange(self.n_steps, dtype=np.float32)) * mask).sum(axis=1)
        discounts = (self.gamma ** (last + 1)).astype(np.float32)
        last_inds = indices[np.arange(len(batch_inds)), last]
        final_dones = self.dones[last_inds, env_indices] & ~(self.timeouts[last_inds, env_indices])
        obs = self._normalize_obs(self._stacks(self.obs_back, batch_inds, env_indices), env)
        next_obs = self._normalize_obs(self._stacks(self.next_back, last_inds, env_indices), env)
        observations, next_observations = self.to_torch(obs), self.to_torch(next_obs)  # type: ignore[arg-type]
        if self.augment_shift > 0:
            pad, n = self.augment_shift, len(batch_inds)
            observations = random_shift(observations, draw_shifts(n, pad), pad)
            next_observations = random_shift(next_observations, draw_shifts(n, pad), pad)
        return ReplaySamples(
            observations=observations,
            actions=self.to_torch(self.actions[batch_inds, env_indices]),
            next_observations=next_observations,
            dones=self.to_torch(final_dones.astype(np.float32).reshape(-1, 1)),
            rewards=self.to_torch(returns.astype(np.float32).reshape(-1, 1)),
            discounts=self.to_torch(discounts.reshape(-1, 1)),
            weights=self.to_torch(np.ones((len(batch_inds), 1), dtype=np.float32)),
        )

    def update_priorities(self, keys: Any, td_errors: np.ndarray) -> None:
        """Prioritized buffers set the priorities of the samples ``keys`` (:attr:`ReplaySamples.priority_keys`) from
        their absolute TD errors; uniform sampling has none to set."""


def _padded(array: np.ndarray, axis: int, size: int) -> np.ndarray:
    """``array`` zero-filled along ``axis`` to ``size``."""
    if array.shape[axis] == size:
        return array
    shape = list(array.shape)
    shape[axis] = size
    out = np.zeros(shape, dtype=array.dtype)
    out[(slice(None),) * axis + (slice(0, array.shape[axis]),)] = array
    return out


def check_frame_stack_space(observation_space: spaces.Space) -> None:
    """Raise :class:`ConfigError` unless the space is a uint8 ``Box`` of shape ``(stack, height, width)``."""
    ok = (
        isinstance(observation_space, spaces.Box)
        and observation_space.dtype == np.uint8
        and len(observation_space.shape) == 3
        and observation_space.shape[0] < min(observation_space.shape[1:])
        and observation_space.shape[0] <= 64
    )
    if not ok:
        raise ConfigError(
            "FrameStackReplayBuffer needs frame-stacked uint8 observations of shape (stack, height, width), "
            f"got {observation_space}; use SB3's ReplayBuffer for this env"
        )


def is_frame_stack_space(observation_space: spaces.Space) -> bool:
    """Whether :class:`FrameStackReplayBuffer` can store this observation space."""
    try:
        check_frame_stack_space(observation_space)
    except ConfigError:
        return False
    return True
