"""Make tests/data/levers/: one small DDQN zip per opt-in lever, saved before the DDQN refactor, with golden numbers.

    .venv/bin/python tests/data/make_lever_models.py

Each zip was trained a few hundred steps on a tiny image env (2x8x8 uint8 frames, 2 actions) with one lever on
(prioritized replay, ez-greedy, advantage learning, augment shift, linear schedule, dueling head; ``plain`` with
none). ``golden.json`` holds, per zip, the Q-values of ``OBS`` and the greedy actions, the exploration state, and the
loss of one gradient step (``train(1, 8)`` after seeding NumPy with ``LOSS_SEED`` on a buffer filled with
``transitions.npz``). tests/test_lever_fixtures.py loads the zips with today's code and checks the same numbers.
"""

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_mario import DDQN
from sb3_mario.prioritized import PrioritizedFrameStackReplayBuffer

HERE = Path(__file__).parent / "levers"
SHAPE = (2, 8, 8)
LOSS_SEED = 123
COMMON: dict[str, Any] = dict(
    buffer_size=500, learning_starts=50, batch_size=8, train_freq=1, target_update_interval=50, seed=0,
    device="cpu", overlap_learning=False, gamma=0.9, exploration_initial_eps=1.0, exploration_final_eps=0.05,
    policy_kwargs={"net_arch": [16]},
)  # fmt: skip
LEVERS: dict[str, dict[str, Any]] = {
    "plain": {},
    "prioritized": {"replay_buffer_class": PrioritizedFrameStackReplayBuffer, "n_steps": 3},
    "ez_greedy": {"ez_greedy_mu": 2.0},
    "advantage_learning": {"advantage_learning": 0.9},
    "augment_shift": {"augment_shift": 1},
    "linear": {"exploration_schedule": "linear", "exploration_fraction": 0.5},
    "dueling": {"policy_kwargs": {"net_arch": [16], "dueling": True}},
}


class TinyImageEnv(gym.Env):
    """A 1-D walk drawn as a 2-frame stack of 8x8 images: action 1 moves right (+1 reward), 0 stays (0); 20 steps."""

    observation_space = spaces.Box(0, 255, SHAPE, np.uint8)
    action_space = spaces.Discrete(2)

    def _frame(self) -> np.ndarray:
        frame = np.zeros(SHAPE[1:], dtype=np.uint8)
        frame[:, self.x % 8] = 255
        return frame

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.x, self.t = 0, 0
        self.frames = [self._frame()] * 2
        return np.stack(self.frames), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.x += int(action)
        self.t += 1
        self.frames = [self.frames[-1], self._frame()]
        return np.stack(self.frames), float(action), False, self.t >= 20, {}


def transitions(n: int = 64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, (n + SHAPE[0], *SHAPE[1:]), dtype=np.uint8)
    obs = np.stack([frames[i : i + SHAPE[0]] for i in range(n)])
    next_obs = np.stack([frames[i + 1 : i + 1 + SHAPE[0]] for i in range(n)])
    return {
        "obs": obs,
        "next_obs": next_obs,
        "actions": rng.integers(0, 2, n),
        "rewards": rng.normal(size=n).astype(np.float32),
        "dones": (np.arange(n) % 16 == 15),
    }


def golden(model: DDQN, obs: np.ndarray, data: dict[str, np.ndarray]) -> dict[str, Any]:
    with th.no_grad():
        q = model.q_net(model.policy.obs_to_tensor(obs)[0]).numpy()
    actions, _ = model.predict(obs, deterministic=True)
    return {"q_values": q.tolist(), "greedy": actions.tolist(), "exploration_rate": model.exploration_rate}


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    data = transitions()
    np.savez_compressed(HERE / "transitions.npz", **data)
    obs = np.random.default_rng(0).integers(0, 256, (3, *SHAPE), dtype=np.uint8)
    np.save(HERE / "obs.npy", obs)
    out: dict[str, Any] = {"loss_seed": LOSS_SEED}
    for name, lever in LEVERS.items():
        model = DDQN("MlpPolicy", DummyVecEnv([TinyImageEnv]), **{**COMMON, **lever})
        model.learn(300)
        model.save(HERE / f"{name}.zip")
        loaded = DDQN.load(HERE / f"{name}.zip", device="cpu")
        entry = golden(loaded, obs, data)
        entry["exploration_timesteps"] = loaded.exploration_timesteps
        for i in range(len(data["obs"])):
            loaded.replay_buffer.add(
                data["obs"][i], data["next_obs"][i], np.array([data["actions"][i]]), np.array([data["rewards"][i]]),
                np.array([data["dones"][i]]), [{}],
            )  # fmt: skip
        np.random.seed(LOSS_SEED)
        th.manual_seed(LOSS_SEED)
        loaded.train(gradient_steps=1, batch_size=8)
        entry["loss"] = loaded.logger.name_to_value["train/loss"]
        with th.no_grad():
            entry["q_values_after_step"] = loaded.q_net(loaded.policy.obs_to_tensor(obs)[0]).numpy().tolist()
        out[name] = entry
        print(name, entry["loss"], entry["greedy"], entry["exploration_rate"])
    (HERE / "golden.json").write_text(json.dumps(out, indent=1) + "\n")
