"""sb3_mario: Double-DQN for Super Mario Bros as a Stable-Baselines3 plugin."""

# Must run before stable_baselines3 (or nes-py) imports legacy gym and prints its notice.
from sb3_mario._quiet import silence_gym_notice

silence_gym_notice()

from sb3_mario.buffers import FrameStackReplayBuffer  # noqa: E402
from sb3_mario.ddqn import DDQN, MarioCNN  # noqa: E402
from sb3_mario.envs import make_mario_env, make_mario_vec_env, register_mario_envs  # noqa: E402
from sb3_mario.pretrained import available_pretrained, load_pretrained  # noqa: E402
from sb3_mario.prioritized import PrioritizedFrameStackReplayBuffer  # noqa: E402

register_mario_envs()

__version__ = "0.1.0"

__all__ = [
    "DDQN",
    "FrameStackReplayBuffer",
    "MarioCNN",
    "PrioritizedFrameStackReplayBuffer",
    "__version__",
    "available_pretrained",
    "load_pretrained",
    "make_mario_env",
    "make_mario_vec_env",
    "register_mario_envs",
]
