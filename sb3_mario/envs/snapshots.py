"""Snapshots of a whole :func:`~sb3_mario.make_mario_env` env: the backend's (emulator and frame loop) plus the
state its wrappers keep for the episode (furthest x, the time limit's step count, stall counter, frame stack).

``take_snapshot(env)`` then ``restore_snapshot(env, snapshot)`` puts ``env`` back at that moment: the same actions
and sticky draws from there give the same observations, rewards and infos as the first time. gymnasium has no
state API for its wrappers and nes-py's ``dump_state`` covers the emulator only, hence this walk down the chain.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
from gymnasium.vector.utils import concatenate
from gymnasium.wrappers import FrameStackObservation, TimeLimit

from sb3_mario.envs.backend import BackendSnapshot, MarioBackendEnv
from sb3_mario.errors import EnvConfigError


@dataclass(frozen=True)
class EnvSnapshot:
    """One moment of a wrapped Mario env (:func:`take_snapshot`); valid in this process only, as the backend's.

    :param backend: the emulator and the frame loop's state
    :param wrappers: the episode state of each wrapper, outermost first (``None`` for stateless ones)
    :param layer_types: the class of each wrapper, outermost first (a snapshot restores into the same chain only)
    """

    backend: BackendSnapshot
    wrappers: tuple[Any, ...]
    layer_types: tuple[type, ...]


def _layers(env: gymnasium.Env) -> list[gymnasium.Env]:
    layers: list[gymnasium.Env] = []
    while isinstance(env, gymnasium.Wrapper):
        layers.append(env)
        env = env.env
    return layers


def _backend(env: gymnasium.Env) -> MarioBackendEnv:
    backend = env.unwrapped
    if not isinstance(backend, MarioBackendEnv):
        raise EnvConfigError(f"snapshots need a Mario env (make_mario_env), got {type(backend).__name__}")
    return backend


def _wrapper_state(layer: gymnasium.Env) -> Any:
    if isinstance(layer, TimeLimit):
        return layer._elapsed_steps
    if isinstance(layer, FrameStackObservation):
        return [np.array(frame) for frame in layer.obs_queue]
    get_state = getattr(type(layer), "episode_state", None)
    return copy.deepcopy(get_state(layer)) if get_state is not None else None


def _same_layout(layer: gymnasium.Env, state: Any) -> bool:
    if isinstance(layer, FrameStackObservation):
        return isinstance(state, list) and len(state) == layer.stack_size
    return not isinstance(state, list)


def _set_wrapper_state(layer: gymnasium.Env, state: Any) -> None:
    if isinstance(layer, TimeLimit):
        layer._elapsed_steps = state
    elif isinstance(layer, FrameStackObservation):
        layer.obs_queue.clear()
        layer.obs_queue.extend(np.array(frame) for frame in state)
    elif hasattr(type(layer), "set_episode_state"):
        layer.set_episode_state(copy.deepcopy(state))  # type: ignore[attr-defined]


def take_snapshot(env: gymnasium.Env, include_rng: bool = False) -> EnvSnapshot:
    """This moment of ``env`` (a :func:`~sb3_mario.make_mario_env` env), to :func:`restore_snapshot` later.

    :param env: the env, as ``make_mario_env`` built it (with or without further wrappers that keep no state)
    :param include_rng: also save the sticky-action generator (see :meth:`MarioBackendEnv.snapshot`)
    """
    backend = _backend(env).snapshot(include_rng=include_rng)
    layers = _layers(env)
    return EnvSnapshot(backend, tuple(_wrapper_state(layer) for layer in layers), tuple(type(layer) for layer in layers))


def restore_snapshot(env: gymnasium.Env, snapshot: EnvSnapshot) -> np.ndarray | None:
    """Put ``env`` back at ``snapshot`` and return the observation it gave at that moment (the frame stack's;
    ``None`` if the env stacks no frames).

    :param env: the env the snapshot was taken in, or one built with the same settings in this process
    :param snapshot: from :func:`take_snapshot`
    """
    layers = _layers(env)
    if len(layers) != len(snapshot.wrappers) or not all(
        type(layer) is layer_type and _same_layout(layer, state)
        for layer, layer_type, state in zip(layers, snapshot.layer_types, snapshot.wrappers, strict=True)
    ):
        raise EnvConfigError("this snapshot was taken in an env with other wrappers (build both with the same settings)")
    _backend(env).restore(snapshot.backend)
    observation = None
    for layer, state in zip(layers, snapshot.wrappers, strict=True):
        _set_wrapper_state(layer, state)
        if isinstance(layer, FrameStackObservation) and observation is None:
            stacked = concatenate(layer.env.observation_space, layer.obs_queue, layer.stacked_obs)  # type: ignore[arg-type]
            observation = np.array(stacked)
    return observation


__all__ = ["EnvSnapshot", "restore_snapshot", "take_snapshot"]
