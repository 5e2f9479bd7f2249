"""Super Mario Bros environments for SB3: backend adapter, action sets, wrappers, factories, registration."""

from sb3_mario.envs.actions import ACTION_SETS, BUTTON_BITS, resolve_actions
from sb3_mario.envs.backend import LEGACY_BACKEND, BackendSnapshot, MarioBackendEnv, backend_env_ids
from sb3_mario.envs.factory import make_mario_env, make_mario_vec_env, play_env_kwargs
from sb3_mario.envs.frontier import FrontierStarts, is_restart
from sb3_mario.envs.registration import register_mario_envs
from sb3_mario.envs.snapshots import EnvSnapshot, restore_snapshot, take_snapshot
from sb3_mario.envs.wrappers import (
    MARIO_INFO_KEYS,
    ButtonsObservation,
    FlagReward,
    GrayResizeObservation,
    MarioEpisodeStats,
    MarioFrameSkip,
    NoopStart,
    StallTermination,
)

__all__ = [
    "ACTION_SETS",
    "BUTTON_BITS",
    "LEGACY_BACKEND",
    "MARIO_INFO_KEYS",
    "BackendSnapshot",
    "ButtonsObservation",
    "EnvSnapshot",
    "FlagReward",
    "FrontierStarts",
    "GrayResizeObservation",
    "MarioBackendEnv",
    "MarioEpisodeStats",
    "MarioFrameSkip",
    "NoopStart",
    "StallTermination",
    "backend_env_ids",
    "is_restart",
    "make_mario_env",
    "make_mario_vec_env",
    "play_env_kwargs",
    "register_mario_envs",
    "resolve_actions",
    "restore_snapshot",
    "take_snapshot",
]
