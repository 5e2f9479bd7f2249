"""The weight average (``ema_decay``): the average by hand, and that acting, evaluation (its worker processes too) and
saved models use it while the online weights go on learning and come back on load."""

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from sb3_mario import DDQN, make_mario_vec_env
from sb3_mario.errors import ConfigError
from sb3_mario.evaluation import evaluate_protocol
from sb3_mario.export import export_to_sb3


def cartpole_ddqn(**learner_kwargs) -> DDQN:
    return DDQN(
        "MlpPolicy", make_vec_env("CartPole-v1", seed=0), buffer_size=500, learning_starts=16, batch_size=8,
        train_freq=1, seed=0, device="cpu", learner_kwargs=learner_kwargs,
    )  # fmt: skip


def weights(net) -> list[th.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def test_the_average_moves_toward_the_online_weights_after_every_gradient_step():
    model = cartpole_ddqn(ema_decay=0.5, overlap=False)
    model.learn(20)  # 4 gradient steps: fill the buffer past learning_starts
    w0 = weights(model.q_net)
    for w, a in zip(w0, model._average.parameters(), strict=True):
        a.data.copy_(w)  # start the hand count from the online weights
    model.train(gradient_steps=1, batch_size=8)
    w1 = weights(model.q_net)
    model.train(gradient_steps=1, batch_size=8)
    w2 = weights(model.q_net)
    for a, x0, x1, x2 in zip(model._average.parameters(), w0, w1, w2, strict=True):
        assert not th.equal(x1, x2)  # the online network learns as before
        th.testing.assert_close(a, 0.25 * x0 + 0.25 * x1 + 0.5 * x2, rtol=0, atol=1e-6)


def test_overlapped_learning_acts_with_the_average():
    model = cartpole_ddqn(ema_decay=0.9)
    checks = []

    class Acting(BaseCallback):
        def _on_step(self):
            self.model.apply_pending_update()  # the acting copy is refreshed when an update lands
            acting, average = self.model._learner.acting_net, self.model._average
            checks.append(all(th.equal(x, y) for x, y in zip(acting.parameters(), average.parameters(), strict=True)))
            return True

    model.learn(60, callback=Acting())
    assert len(checks) == 60 and all(checks)
    assert not all(th.equal(x, y) for x, y in zip(model.q_net.parameters(), model._average.parameters(), strict=True))


@pytest.fixture
def torn_model():
    """A Mario DDQN whose online network always picks [right] and whose average always picks [right, A]."""
    env = make_mario_vec_env(n_envs=1, vec_env="dummy", seed=0, screen_size=42)
    model = DDQN("CnnPolicy", env, buffer_size=500, device="cpu", learner_kwargs={"ema_decay": 0.99})
    with th.no_grad():
        list(model.q_net.parameters())[-1].copy_(th.tensor([100.0, -100.0]))
        list(model._average.parameters())[-1].copy_(th.tensor([-100.0, 100.0]))
    yield model
    env.close()


def test_acting_evaluation_workers_and_saves_use_the_average_and_load_restores_both(torn_model, tmp_path):
    model = torn_model
    obs = model.get_env().reset()
    assert model.predict(obs, deterministic=True)[0].tolist() == [1]
    # two protocol episodes, the second in a worker process that gets the weights a save writes
    result = evaluate_protocol(model, model.mario_env, n_episodes=2, seed=5, n_workers=2)
    assert [episode.actions[0] for episode in result.episodes] == [0, 0]  # never [right]
    assert all(episode.actions[1] > 0 for episode in result.episodes)
    model.save(tmp_path / "torn.zip")
    plain = DQN.load(tmp_path / "torn.zip", device="cpu")  # plain SB3 plays the average
    assert plain.predict(obs, deterministic=True)[0].tolist() == [1]
    loaded = DDQN.load(tmp_path / "torn.zip", device="cpu")
    assert list(loaded.q_net.parameters())[-1].tolist() == [100.0, -100.0]  # the online weights, to go on learning
    assert list(loaded._average.parameters())[-1].tolist() == [-100.0, 100.0]
    assert loaded.predict(obs, deterministic=True)[0].tolist() == [1]
    assert not hasattr(loaded, "online_q_net") and loaded.learner_kwargs == {"ema_decay": 0.99}
    # -i with the average turned off trains on from the online weights
    off = DDQN.load(tmp_path / "torn.zip", device="cpu", learner_kwargs={"ema_decay": 0.0})
    assert off._average is None and list(off.q_net.parameters())[-1].tolist() == [100.0, -100.0]
    assert off.predict(obs, deterministic=True)[0].tolist() == [0]
    assert "online_q_net" in export_to_sb3(tmp_path / "torn.zip", tmp_path / "plain.zip")
    assert DQN.load(tmp_path / "plain.zip", device="cpu").predict(obs, deterministic=True)[0].tolist() == [1]


def test_ema_decay_is_checked_and_off_by_default():
    assert cartpole_ddqn()._average is None
    for bad in (1.0, -0.1, "fast"):
        with pytest.raises(ConfigError, match=r"^learner_kwargs.ema_decay: must be a number in \[0.0, 0.999999\]"):
            cartpole_ddqn(ema_decay=bad)
    assert np.isclose(cartpole_ddqn(ema_decay=0.999).ema_decay, 0.999)
