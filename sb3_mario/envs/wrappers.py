"""Preprocessing wrappers: frame skip, grayscale + resize, the buttons held, and per-episode Mario statistics.

Frame stacking and time limits reuse gymnasium's ``FrameStackObservation`` and ``TimeLimit``.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import cv2
import gymnasium
import numpy as np
from gymnasium import spaces

from sb3_mario.envs.actions import BUTTON_BITS
from sb3_mario.envs.backend import MarioBackendEnv
from sb3_mario.errors import EnvConfigError
from sb3_mario.params import check_env_kwargs

# What a stall costs (before ``reward_scale``): a death's reward, after the backend's clip to [-15, 15].
STALL_PENALTY = -15.0

# Info keys of gym-super-mario-bros that SB3's Monitor copies into its CSV and ``info["episode"]``.
# ``start_x`` tells level-start episodes from frontier restarts (:func:`sb3_mario.envs.frontier.is_restart`).
MARIO_INFO_KEYS = ("x_pos", "max_x_pos", "flag_get", "world", "stage", "score", "coins", "time", "life", "start_x")


class MarioFrameSkip(gymnasium.Wrapper):
    """Repeat each action for ``skip`` frames and sum the rewards (the tutorial's ``SkipFrame``).

    The frame loop itself is :meth:`MarioBackendEnv.step_frames` (one loop: sticky actions and ``repeat_jump`` act per
    frame there, and only the frames returned are copied out of the emulator), so this wraps a
    :class:`~sb3_mario.envs.MarioBackendEnv` directly.

    :param env: the backend env to wrap
    :param skip: number of emulator frames per agent step (>= 1)
    :param max_pool: return the pixel-wise max of the last two frames (Atari-style anti-flicker) instead of the last one
    """

    def __init__(self, env: MarioBackendEnv, skip: int = 4, max_pool: bool = False) -> None:
        if not isinstance(env, MarioBackendEnv):
            raise EnvConfigError(f"MarioFrameSkip wraps a MarioBackendEnv directly, got {type(env).__name__}")
        super().__init__(env)
        check_env_kwargs(frame_skip=skip)
        self.skip = skip
        self.max_pool = max_pool
        self._backend = env

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        return self._backend.step_frames(action, self.skip, self.max_pool)


class GrayResizeObservation(gymnasium.ObservationWrapper):
    """RGB frame -> uint8 grayscale of ``screen_size`` with OpenCV (``INTER_AREA``).

    :param env: an env with ``(H, W, 3)`` uint8 observations
    :param screen_size: output side (int) or ``(height, width)``
    """

    def __init__(self, env: gymnasium.Env, screen_size: int | tuple[int, int] = 84) -> None:
        super().__init__(env)
        check_env_kwargs(screen_size=screen_size)
        if isinstance(screen_size, int):
            screen_size = (screen_size, screen_size)
        self.shape = (int(screen_size[0]), int(screen_size[1]))
        self._cv_size = (self.shape[1], self.shape[0])
        self.observation_space = spaces.Box(0, 255, self.shape, np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(observation, cv2.COLOR_RGB2GRAY)
        return cv2.resize(gray, self._cv_size, interpolation=cv2.INTER_AREA)


class ButtonsObservation(gymnasium.ObservationWrapper):
    """Show the buttons the game got on the step's last frame in the grayscale frame's top-left corner.

    Without ``repeat_jump`` an action with A jumps only if A was up on the frame before, and the screen does not
    show whether it was: a greedy agent that keeps choosing A never jumps again and cannot see why. This paints a row
    of 8 square cells, one per controller bit in :data:`~sb3_mario.envs.actions.BUTTON_BITS` order (right, left, down,
    up, start, select, B, A): 255 where the button was pressed on the last frame (after sticky actions and
    ``repeat_jump``), 0 where not. At 84x84 the cells are 4 pixels and cover the blank strip above the HUD's text
    (its 12 top rows of 240); smaller frames get smaller cells, down to 1 pixel. With frame stacking the network sees the
    buttons of the last ``frame_stack`` steps. R2D2-style agents feed the previous action to a recurrent core;
    painting it keeps SB3's ``CnnPolicy`` and its saved zips as they are, and neither gymnasium nor SB3 has such a
    wrapper.

    :param env: an env with ``(H, W)`` uint8 observations (:class:`GrayResizeObservation`) around a
        :class:`~sb3_mario.envs.MarioBackendEnv`
    """

    BITS = tuple(bit for bit in BUTTON_BITS.values() if bit)  # NOOP presses none

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        if not isinstance(env.unwrapped, MarioBackendEnv):
            raise EnvConfigError(f"ButtonsObservation needs a MarioBackendEnv inside, got {type(env.unwrapped).__name__}")
        shape = env.observation_space.shape
        if shape is None or len(shape) != 2 or shape[1] < len(self.BITS):
            raise EnvConfigError(f"ButtonsObservation paints (H, W) frames with W >= {len(self.BITS)}, got {shape}")
        height, width = shape
        self.cell = max(1, min(height // 21, width // (2 * len(self.BITS))))
        self._backend: MarioBackendEnv = env.unwrapped
        self._bits = np.array(self.BITS)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        cells = np.where(self._bits & self._backend.last_pressed, 255, 0).astype(np.uint8)
        observation = observation.copy()
        observation[: self.cell, : self.cell * len(self.BITS)] = np.repeat(cells, self.cell)[None, :]
        return observation


class MarioEpisodeStats(gymnasium.Wrapper):
    """Add ``max_x_pos`` (furthest x reached this episode) and ``start_x`` (Mario's x when the episode began: the
    level's start, or a frontier restart's) to every info dict, and ``is_success`` (the flag was reached) at the end of
    an episode, which SB3's ``EvalCallback`` reports as ``eval/success_rate``.

    Together with the backend's own keys this makes :data:`MARIO_INFO_KEYS`, which
    :func:`sb3_mario.make_mario_vec_env` hands to SB3's ``Monitor`` as ``info_keywords``.
    """

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        self._max_x = 0
        self._start_x = 0

    def episode_state(self) -> tuple[int, int]:
        """What :func:`~sb3_mario.envs.snapshots.take_snapshot` saves of this wrapper."""
        return self._max_x, self._start_x

    def set_episode_state(self, state: tuple[int, int]) -> None:
        """Restore :meth:`episode_state` (:func:`~sb3_mario.envs.snapshots.restore_snapshot`).

        :param state: from :meth:`episode_state`
        """
        self._max_x, self._start_x = state

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._max_x = self._start_x = int(info.get("x_pos", 0))
        info.update(max_x_pos=self._max_x, start_x=self._start_x)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._max_x = max(self._max_x, int(info.get("x_pos", 0)))
        info.update(max_x_pos=self._max_x, start_x=self._start_x)
        if terminated or truncated:
            info["is_success"] = bool(info.get("flag_get", False))
        return obs, reward, terminated, truncated, info


def noop_action(env: gymnasium.Env) -> int:
    """The action that presses no button: the backend's :attr:`~sb3_mario.envs.MarioBackendEnv.noop_index` (outside
    the action space, so action sets without ``NOOP``, such as the tutorial's, have one too); for other envs the index
    of ``NOOP``, else of plain ``right``."""
    noop_index = getattr(env.unwrapped, "noop_index", None)
    if noop_index is not None:
        return int(noop_index)
    meanings: list[str] = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
    return next((meanings.index(wanted) for wanted in ("NOOP", "right") if wanted in meanings), 0)


class NoopStart(gymnasium.Wrapper):
    """Start each episode with 0 to ``noop_max`` do-nothing steps, drawn from the env's seeded generator.

    The emulator is deterministic: without it a greedy agent replays one trajectory, so evaluating it twice proves
    nothing. The number taken is ``info["noops"]`` after ``reset``. No-op steps press no button (:func:`noop_action`).

    :param env: the environment to wrap
    :param noop_max: largest number of no-op steps (>= 0)
    """

    def __init__(self, env: gymnasium.Env, noop_max: int = 30) -> None:
        super().__init__(env)
        check_env_kwargs(noop_max=noop_max)
        self.noop_max = noop_max
        self.noop_action = noop_action(env)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        n_noops = int(self.np_random.integers(0, self.noop_max + 1))
        for _ in range(n_noops):
            obs, _, terminated, truncated, info = self.env.step(self.noop_action)
            if terminated or truncated:
                obs, info = self.env.reset()
        info["noops"] = n_noops
        return obs, info


class FlagReward(gymnasium.Wrapper):
    """Add ``bonus`` to the reward of the step on which Mario reaches the flag (``info["flag_get"]``).

    gym-super-mario-bros pays for x progress, the clock and death, nothing for the flag: at the flagpole "jump" and
    "wait" differ by ~0.07 against Q-values of ~50, and greedy policies stand at its base. The bonus makes finishing
    worth something. It sits right on the frame-skip wrapper, so it is in the game's units and ``reward_scale``
    multiplies it as every other reward; the flag ends the episode as terminated, so a TD target does not bootstrap
    past it and an n-step return collects it discounted from each of the n steps before. It is paid once: the step
    that reaches the flag is the episode's last. gymnasium and SB3 have no such wrapper (``TransformReward`` sees the
    reward only).

    :param env: a frame-skipped Mario env whose infos carry ``flag_get``
    :param bonus: reward added on the flag step, in game units (>= 0)
    """

    def __init__(self, env: gymnasium.Env, bonus: float) -> None:
        super().__init__(env)
        check_env_kwargs(flag_reward=bonus)
        self.bonus = float(bonus)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if info.get("flag_get", False):
            reward = float(reward) + self.bonus
        return obs, reward, terminated, truncated, info


class StallTermination(gymnasium.Wrapper):
    """End an episode as lost when Mario's furthest x has not grown for ``stall_steps`` agent steps in a row.

    A greedy agent that presses ``right`` against a wall stands there until the time limit; with a high discount the
    value of that loop falls only a little per target update, so it can stay the greedy choice for hundreds of
    thousands of steps. Ending the episode with a death's penalty anchors it and frees the rest of the episode's
    steps for learning. Counted from the end of ``reset`` (no-op starts included there), from ``info["max_x_pos"]``
    of :class:`MarioEpisodeStats`; the step that ends an episode this way has ``info["stalled"] = True`` and
    ``is_success = False``. gymnasium and SB3 have no such wrapper (``TimeLimit`` truncates on a step count only).

    :param env: an env whose infos carry ``max_x_pos`` (:class:`MarioEpisodeStats` inside)
    :param stall_steps: steps without a new furthest x that end the episode (>= 1)
    :param penalty: reward added on the step that ends it, in the env's reward units
    """

    def __init__(self, env: gymnasium.Env, stall_steps: int, penalty: float = STALL_PENALTY) -> None:
        super().__init__(env)
        check_env_kwargs(stall_steps=stall_steps)
        self.stall_steps = stall_steps
        self.penalty = float(penalty)
        self._best_x = 0
        self._since = 0

    def episode_state(self) -> tuple[int, int]:
        """What :func:`~sb3_mario.envs.snapshots.take_snapshot` saves of this wrapper."""
        return self._best_x, self._since

    def set_episode_state(self, state: tuple[int, int]) -> None:
        """Restore :meth:`episode_state` (:func:`~sb3_mario.envs.snapshots.restore_snapshot`).

        :param state: from :meth:`episode_state`
        """
        self._best_x, self._since = state

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._best_x, self._since = int(info.get("max_x_pos", 0)), 0
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        max_x = int(info.get("max_x_pos", 0))
        if max_x > self._best_x:
            self._best_x, self._since = max_x, 0
        else:
            self._since += 1
        if self._since >= self.stall_steps and not (terminated or truncated):
            reward = float(reward) + self.penalty
            terminated = True
            info["stalled"] = True
            info["is_success"] = False
        return obs, reward, terminated, truncated, info
