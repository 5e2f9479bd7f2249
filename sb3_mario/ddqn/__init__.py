from sb3_mario.ddqn.ddqn import DDQN, double_q_target
from sb3_mario.ddqn.policies import CnnPolicy, DuelingQNetwork, MarioCNN, MlpPolicy

__all__ = ["DDQN", "CnnPolicy", "DuelingQNetwork", "MarioCNN", "MlpPolicy", "double_q_target"]
