"""Temporally-extended epsilon-greedy (ez-greedy): repeats by hand, the zeta lengths, DDQN's burn-in, save/load."""

import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env

from sb3_mario import DDQN
from sb3_mario.ddqn import exploration
from sb3_mario.ddqn.exploration import TemporallyExtendedExploration, sample_duration
from sb3_mario.errors import ConfigError


class Scripted:
    """Hands out the given values one after another (random actions, repeat lengths)."""

    def __init__(self, values):
        self.values = list(values)

    def __call__(self, *args):
        return self.values.pop(0)


@pytest.fixture
def scripted(monkeypatch):
    """A ``TemporallyExtendedExploration`` over 4 actions whose random actions and lengths are scripted."""

    def make(actions, durations):
        ez = TemporallyExtendedExploration(2.0, spaces.Discrete(4))
        monkeypatch.setattr(ez.action_space, "sample", Scripted(actions))
        monkeypatch.setattr(exploration, "sample_duration", Scripted(durations))
        return ez

    return make


def test_an_exploring_env_holds_its_random_action_for_the_drawn_length(scripted):
    ez = scripted(actions=[1, 0, 3], durations=[3, 1, 2])
    greedy_calls = []

    def greedy():
        greedy_calls.append(1)
        return np.array([2])

    steps = [int(ez.act(1, 1.0, greedy)[0]) for _ in range(6)]
    assert steps == [1, 1, 1, 0, 3, 3]  # lengths 3, 1, 2, each starting on the step its coin came up
    assert greedy_calls == []  # every step explored: no forward pass
    # a repeat started under epsilon 1 runs to its end when epsilon drops to 0, then play is greedy
    ez = scripted(actions=[3], durations=[2])
    assert [int(ez.act(1, e, greedy)[0]) for e in (1.0, 0.0, 0.0, 0.0)] == [3, 3, 2, 2]


def test_each_env_keeps_its_own_repeat(scripted):
    ez = scripted(actions=[1, 3], durations=[3, 1])
    greedy = lambda: np.array([0, 2])  # noqa: E731
    assert ez.act(2, 1.0, greedy).tolist() == [1, 3]  # both start a repeat
    assert ez.act(2, 0.0, greedy).tolist() == [1, 2]  # env 0 repeats, env 1 (length 1 done) plays greedily
    assert ez.act(2, 0.0, greedy).tolist() == [1, 2]
    assert ez.act(2, 0.0, greedy).tolist() == [0, 2]
    assert ez.act(3, 0.0, lambda: np.array([0, 0, 0])).tolist() == [0, 0, 0]  # new number of envs: no carry-over


def test_repeat_lengths_follow_the_capped_zeta_distribution():
    np.random.seed(0)
    cap = 4
    draws = np.array([sample_duration(1.5, max_duration=cap) for _ in range(20_000)])
    weights = np.arange(1, cap + 1) ** -1.5
    expected = weights / weights.sum()  # 0.5803, 0.2052, 0.1117, 0.0725: redrawn above the cap, not clipped to it
    observed = np.bincount(draws, minlength=cap + 1)[1:] / len(draws)
    assert np.abs(observed - expected).max() < 0.011  # 3 standard errors of the largest cell
    np.random.seed(1)
    paper = np.array([sample_duration(2.0) for _ in range(20_000)])
    assert paper.max() <= exploration.MAX_DURATION
    assert abs((paper == 1).mean() - 1 / sum(n**-2.0 for n in range(1, 10_001))) < 0.011  # 0.608


def small_ez_ddqn(**kwargs):
    params = dict(buffer_size=500, learning_starts=32, batch_size=8, seed=0, device="cpu", ez_greedy_mu=2.0)
    params.update(kwargs)
    return DDQN("MlpPolicy", make_vec_env("CartPole-v1", n_envs=1, seed=0), **params)


def test_ddqn_holds_random_actions_in_the_burn_in_and_after(monkeypatch):
    model = small_ez_ddqn(learning_starts=10)
    monkeypatch.setattr(exploration, "sample_duration", Scripted([4, 6, 5]))
    monkeypatch.setattr(model.action_space, "sample", Scripted([1, 0, 1]))
    burn_in = [int(model._sample_action(learning_starts=10)[0][0]) for _ in range(9)]
    assert burn_in == [1, 1, 1, 1, 0, 0, 0, 0, 0]  # SB3's burn-in draws 9 independent actions
    model.exploration_rate = 0.0
    obs = np.zeros((1, 4), dtype=np.float32)
    greedy = int(model.predict(obs, deterministic=True)[0][0])
    after = [int(model.predict(obs)[0][0]) for _ in range(3)]  # the repeat of length 6 has 1 step left
    assert after == [0, greedy, greedy]


def test_ddqn_with_ez_greedy_learns_saves_and_loads(tmp_path):
    model = small_ez_ddqn(exploration_schedule="linear", exploration_fraction=0.5)
    model.learn(200)
    assert model._ez is not None
    model.save(tmp_path / "ez.zip")
    loaded = DDQN.load(tmp_path / "ez.zip", device="cpu")
    assert loaded.ez_greedy_mu == 2.0 and loaded._ez is None  # the setting is saved, the repeats in progress not
    plain = small_ez_ddqn(ez_greedy_mu=None)
    plain.learn(100)
    assert plain.ez_greedy_mu is None and plain._ez is None


@pytest.mark.parametrize("mu", [1.0, 0.5, -2.0, "2"])
def test_bad_ez_greedy_mu(mu):
    with pytest.raises(ConfigError, match=r"ez_greedy_mu: must be a number in \(1.0, 100.0\]"):
        small_ez_ddqn(ez_greedy_mu=mu)
