from sb3_mario.ddqn.ddqn import DDQN, advantage_learning_target, double_q_target
from sb3_mario.ddqn.policies import CnnPolicy, DuelingQNetwork, MarioCNN, MlpPolicy

__all__ = [
    "DDQN",
    "CnnPolicy",
    "DuelingQNetwork",
    "MarioCNN",
    "MlpPolicy",
    "advantage_learning_target",
    "double_q_target",
]
