from sb3_mario.ddqn.ddqn import DDQN
from sb3_mario.ddqn.policies import CnnPolicy, DuelingQNetwork, MarioCNN, MlpPolicy
from sb3_mario.ddqn.targets import advantage_learning_target, double_q_target

__all__ = ["DDQN", "CnnPolicy", "DuelingQNetwork", "MarioCNN", "MlpPolicy", "advantage_learning_target", "double_q_target"]
