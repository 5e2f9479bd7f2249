"""A faithful re-creation of the PyTorch Mario tutorial's training loop, for timing (see shared/reference).

Same env (gym-super-mario-bros via ``gym.make(..., apply_api_compatibility=True)`` + ``JoypadSpace``), same wrappers
(SkipFrame 4, grayscale, antialiased resize to 84, /255, ``gym.wrappers.FrameStack`` 4, all float32 tensors), same
``MarioNet`` and ``Mario.act/cache/recall/learn``. Two stand-ins, both in the baseline's favour: torchvision's
``Grayscale``/``Resize`` are replaced by the same torch operations (PyPI's torchvision does not import beside the CPU
torch 2.13.0 on this machine), and torchrl's ``LazyMemmapStorage`` by float32 ``np.memmap`` arrays without
TensorDict's per-item overhead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sb3_mario._quiet import silence_gym_notice

silence_gym_notice()
import gym  # noqa: E402
import gym_super_mario_bros  # noqa: E402
from gym.spaces import Box  # noqa: E402
from gym.wrappers import FrameStack  # noqa: E402
from nes_py.wrappers import JoypadSpace  # noqa: E402

GRAY = torch.tensor([0.2989, 0.587, 0.114]).view(3, 1, 1)  # torchvision's rgb_to_grayscale weights


class SkipFrame(gym.Wrapper):
    def __init__(self, env, skip):
        super().__init__(env)
        self._skip = skip

    def step(self, action):
        total_reward = 0.0
        for _ in range(self._skip):
            obs, reward, done, trunk, info = self.env.step(action)
            total_reward += reward
            if done:
                break
        return obs, total_reward, done, trunk, info


class GrayScaleObservation(gym.ObservationWrapper):
    def __init__(self, env):
        super().__init__(env)
        self.observation_space = Box(low=0, high=255, shape=self.observation_space.shape[:2], dtype=np.uint8)

    def observation(self, observation):
        observation = torch.tensor(np.transpose(observation, (2, 0, 1)).copy(), dtype=torch.float)
        return (observation * GRAY).sum(dim=0, keepdim=True)  # T.Grayscale() on a float tensor


class ResizeObservation(gym.ObservationWrapper):
    def __init__(self, env, shape):
        super().__init__(env)
        self.shape = (shape, shape)
        self.observation_space = Box(low=0, high=255, shape=self.shape, dtype=np.uint8)

    def observation(self, observation):
        # T.Compose([T.Resize(self.shape, antialias=True), T.Normalize(0, 255)]), then squeeze(0)
        resized = F.interpolate(observation[None], size=self.shape, mode="bilinear", antialias=True, align_corners=False)
        return (resized[0] / 255).squeeze(0)


def make_env():
    env = gym_super_mario_bros.make("SuperMarioBros-1-1-v0", render_mode="rgb", apply_api_compatibility=True)
    env = JoypadSpace(env, [["right"], ["right", "A"]])
    return FrameStack(ResizeObservation(GrayScaleObservation(SkipFrame(env, skip=4)), shape=84), num_stack=4)


class MarioNet(nn.Module):
    def __init__(self, input_dim, output_dim):
        super().__init__()
        c = input_dim[0]
        self.online = self._build_cnn(c, output_dim)
        self.target = self._build_cnn(c, output_dim)
        self.target.load_state_dict(self.online.state_dict())
        for p in self.target.parameters():
            p.requires_grad = False

    def forward(self, input, model):
        return self.online(input) if model == "online" else self.target(input)

    @staticmethod
    def _build_cnn(c, output_dim):
        return nn.Sequential(
            nn.Conv2d(c, 32, kernel_size=8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(3136, 512), nn.ReLU(), nn.Linear(512, output_dim),
        )  # fmt: skip


class MemmapStorage:
    """float32 state/next_state on disk (torchrl LazyMemmapStorage's layout), plus small arrays in memory."""

    def __init__(self, capacity: int, shape: tuple[int, ...]) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="tutorial_memmap_")
        self.state = np.memmap(Path(self.dir.name) / "state", np.float32, "w+", shape=(capacity, *shape))
        self.next_state = np.memmap(Path(self.dir.name) / "next_state", np.float32, "w+", shape=(capacity, *shape))
        self.action = np.zeros(capacity, np.int64)
        self.reward = np.zeros(capacity, np.float64)
        self.done = np.zeros(capacity, np.bool_)
        self.capacity, self.size, self.pos = capacity, 0, 0

    def add(self, state, next_state, action, reward, done) -> None:
        self.state[self.pos], self.next_state[self.pos] = state, next_state
        self.action[self.pos], self.reward[self.pos], self.done[self.pos] = action, reward, done
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int):
        idx = np.random.randint(0, self.size, size=batch_size)
        return (
            torch.from_numpy(self.state[idx]),
            torch.from_numpy(self.next_state[idx]),
            torch.from_numpy(self.action[idx]),
            torch.from_numpy(self.reward[idx]),
            torch.from_numpy(self.done[idx]),
        )


class Mario:
    def __init__(self, state_dim, action_dim, burnin, buffer_size=100_000):
        self.state_dim, self.action_dim = state_dim, action_dim
        self.device = "cpu"
        self.net = MarioNet(self.state_dim, self.action_dim).float().to(self.device)
        self.exploration_rate = 1
        self.exploration_rate_decay = 0.99999975
        self.exploration_rate_min = 0.1
        self.curr_step = 0
        self.memory = MemmapStorage(buffer_size, tuple(state_dim))
        self.batch_size = 32
        self.gamma = 0.9
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=0.00025)
        self.loss_fn = torch.nn.SmoothL1Loss()
        self.burnin = burnin
        self.learn_every = 3
        self.sync_every = 1e4

    def act(self, state):
        if np.random.rand() < self.exploration_rate:
            action_idx = np.random.randint(self.action_dim)
        else:
            state = state[0].__array__() if isinstance(state, tuple) else state.__array__()
            state = torch.tensor(state, device=self.device).unsqueeze(0)
            action_values = self.net(state, model="online")
            action_idx = torch.argmax(action_values, axis=1).item()
        self.exploration_rate *= self.exploration_rate_decay
        self.exploration_rate = max(self.exploration_rate_min, self.exploration_rate)
        self.curr_step += 1
        return action_idx

    def cache(self, state, next_state, action, reward, done) -> None:
        def first_if_tuple(x):
            return x[0] if isinstance(x, tuple) else x

        state = torch.tensor(first_if_tuple(state).__array__())
        next_state = torch.tensor(first_if_tuple(next_state).__array__())
        self.memory.add(state.numpy(), next_state.numpy(), action, reward, done)

    def recall(self):
        state, next_state, action, reward, done = self.memory.sample(self.batch_size)
        return state, next_state, action.squeeze(), reward.squeeze(), done.squeeze()

    def td_estimate(self, state, action):
        return self.net(state, model="online")[np.arange(0, self.batch_size), action]

    @torch.no_grad()
    def td_target(self, reward, next_state, done):
        next_state_q = self.net(next_state, model="online")
        best_action = torch.argmax(next_state_q, axis=1)
        next_q = self.net(next_state, model="target")[np.arange(0, self.batch_size), best_action]
        return (reward + (1 - done.float()) * self.gamma * next_q).float()

    def update_q_online(self, td_estimate, td_target):
        loss = self.loss_fn(td_estimate, td_target)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def sync_q_target(self) -> None:
        self.net.target.load_state_dict(self.net.online.state_dict())

    def learn(self):
        if self.curr_step % self.sync_every == 0:
            self.sync_q_target()
        if self.curr_step < self.burnin:
            return None, None
        if self.curr_step % self.learn_every != 0:
            return None, None
        state, next_state, action, reward, done = self.recall()
        td_est = self.td_estimate(state, action)
        td_tgt = self.td_target(reward, next_state, done)
        loss = self.update_q_online(td_est, td_tgt)
        return td_est.mean().item(), loss


class TutorialRunner:
    """The tutorial's ``run`` loop, resumable across timing windows."""

    def __init__(self, burnin: int, buffer_size: int = 100_000) -> None:
        self.env = make_env()
        self.mario = Mario((4, 84, 84), self.env.action_space.n, burnin, buffer_size)
        self.state = self.env.reset()

    def steps(self, n: int) -> int:
        env, mario, state = self.env, self.mario, self.state
        for _ in range(n):
            action = mario.act(state)
            next_state, reward, done, _trunc, info = env.step(action)
            mario.cache(state, next_state, action, reward, done)
            mario.learn()
            state = next_state
            if done or info["flag_get"]:
                state = env.reset()
        self.state = state
        return n
