"""Overlapped learning (gradient steps in a background thread while the envs step) learns what the plain loop learns."""

import gymnasium
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import CheckpointCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_mario import DDQN, make_mario_vec_env
from sb3_mario.ddqn import ddqn as ddqn_module


def params(model: DDQN) -> list[th.Tensor]:
    return [p.detach().clone() for p in model.policy.state_dict().values()]


def assert_same_weights(a: DDQN, b: DDQN) -> None:
    for x, y in zip(params(a), params(b)):
        assert th.equal(x, y)


def mario_ddqn(overlap: bool, **kwargs) -> DDQN:
    env = make_mario_vec_env(n_envs=1, vec_env="dummy", seed=0)
    hp = dict(buffer_size=400, learning_starts=64, target_update_interval=90, seed=0, device="cpu")
    return DDQN("CnnPolicy", env, learner_kwargs={"overlap": overlap, **kwargs.pop("learner_kwargs", {})}, **{**hp, **kwargs})


def test_random_acting_gives_the_plain_loop_weights_bit_for_bit(tmp_path):
    """With epsilon 1 acting ignores the network, so the one-update lag cannot matter: the updates must be identical
    (same minibatches, same order, target syncs and checkpoints after the same updates)."""
    models = {}
    for overlap in (False, True):
        model = mario_ddqn(overlap, exploration_initial_eps=1.0, exploration_final_eps=1.0)
        checkpoints = CheckpointCallback(150, str(tmp_path / str(overlap)), name_prefix="m")
        model.learn(240, callback=checkpoints)
        models[overlap] = model
        assert model._learner is None  # the background thread is gone after learn()
    plain, overlapped = models[False], models[True]
    assert plain._n_updates == overlapped._n_updates > 40
    assert_same_weights(plain, overlapped)
    # a checkpoint saved mid-learn() holds the update that was in flight
    saved = {o: DDQN.load(tmp_path / str(o) / "m_150_steps.zip", device="cpu") for o in (False, True)}
    assert saved[False]._n_updates == saved[True]._n_updates > 0
    assert_same_weights(saved[False], saved[True])
    for model in models.values():
        model.env.close()


def test_overlapped_runs_are_reproducible():
    """Greedy acting (the lagged network matters): two seeded runs take the same actions and end with the same weights."""
    runs = []
    for _ in range(2):
        model = mario_ddqn(
            True, exploration_kwargs={"schedule": "linear"}, exploration_fraction=0.5, exploration_final_eps=0.0
        )
        model.learn(300)
        runs.append(model)
    assert_same_weights(*runs)
    assert runs[0]._n_updates == runs[1]._n_updates
    for model in runs:
        model.env.close()


class Corridor(gymnasium.Env):
    """Walk right from cell 0 to the last cell: -0.01 per step, +1 at the end; optimal return 1 - 0.01 * (n - 2)."""

    def __init__(self, n: int = 8) -> None:
        self.n = n
        self.observation_space = spaces.Box(0.0, 1.0, (n,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.pos = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.n, np.float32)
        obs[self.pos] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = 0
        return self._obs(), {}

    def step(self, action):
        self.pos = max(0, self.pos + (1 if action == 1 else -1))
        done = self.pos == self.n - 1
        return self._obs(), 1.0 if done else -0.01, done, False, {}


@pytest.mark.parametrize("overlap, bf16", [(False, False), (True, False), (True, True)])
def test_overlap_learns_like_the_plain_loop(overlap, bf16):
    env = Monitor(gymnasium.wrappers.TimeLimit(Corridor(), max_episode_steps=40))
    model = DDQN(
        "MlpPolicy",
        env,
        learning_rate=1e-3,
        buffer_size=5000,
        learning_starts=200,
        batch_size=32,
        gamma=0.95,
        train_freq=1,
        target_update_interval=200,
        exploration_kwargs={"schedule": "linear"},
        exploration_fraction=0.5,
        exploration_final_eps=0.05,
        learner_kwargs={"overlap": overlap, "autocast_bf16": bf16},
        seed=1,
        device="cpu",
    )
    untrained, _ = evaluate_policy(model, env, n_eval_episodes=1, deterministic=True)
    assert untrained < 0  # the initial greedy policy does not find the end
    model.learn(4000)
    mean_return, _ = evaluate_policy(model, env, n_eval_episodes=1, deterministic=True)
    assert mean_return == pytest.approx(1 - 0.01 * 6)


def test_an_error_in_the_learner_thread_reaches_the_caller(monkeypatch):
    def broken(self, batches):
        raise FloatingPointError("loss is NaN")

    monkeypatch.setattr(ddqn_module.DDQN, "_gradient_steps", broken)
    model = mario_ddqn(True)
    with pytest.raises(FloatingPointError, match="NaN"):
        model.learn(128)
    assert model._learner is None
    model.env.close()


def test_bf16_autocast_changes_only_the_precision(monkeypatch):
    """Same weights, same batch: the bf16 loss is close to the float32 one, and not equal (it really ran in bf16)."""
    from sb3_mario.ddqn import engine

    engine.bf16_is_native.cache_clear()  # numerics, not speed: run bfloat16 even where the CPU emulates it
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: True)
    losses = {}
    for bf16 in (False, True):
        model = mario_ddqn(False, learning_starts=100, learner_kwargs={"autocast_bf16": bf16})
        model.learn(100)  # fills the buffer, no update yet
        with th.no_grad():
            for p in model.q_net_target.parameters():
                p.mul_(0.5)  # online and target nets differ
        np.random.seed(7)
        batch = model.replay_buffer.sample(32)
        losses[bf16] = model._gradient_steps([batch]).metrics["loss"][0].item()
        model.env.close()
    engine.bf16_is_native.cache_clear()
    assert losses[True] != losses[False]
    assert losses[True] == pytest.approx(losses[False], rel=0.05)


def test_learner_trains_in_train_mode_and_the_acting_copy_acts_in_eval_mode():
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_mario import DDQN

    seen, devices = [], set()

    class Modes(BaseCallback):
        def _on_step(self):
            learner = self.model._learner
            seen.append((self.model.q_net.training, learner.acting_net.training))
            # --device cuda puts the acting copy where the model is: it is a copy of the online network
            devices.update(p.device for p in learner.acting_net.parameters())
            return True

    model = DDQN(
        "MlpPolicy", make_vec_env("CartPole-v1"), buffer_size=500, learning_starts=16, batch_size=8, train_freq=1,
        device="cpu",
    )  # fmt: skip
    model.learn(80, callback=Modes())
    # SB3's collect_rollouts would set the policy to eval mode while the learner trains it in the background
    assert seen and set(seen) == {(True, False)}
    assert devices == {model.device}


def test_the_learner_gets_the_cores_the_env_workers_leave(monkeypatch):
    from sb3_mario.ddqn import engine

    for cores, n_envs, most, threads in ((8, 2, 16, 6), (2, 1, 2, 1), (2, 4, 2, 1), (16, 4, 8, 8)):
        monkeypatch.setattr(engine, "usable_cores", lambda cores=cores: cores)
        assert engine.learner_threads(n_envs, most) == threads, (cores, n_envs, most)
