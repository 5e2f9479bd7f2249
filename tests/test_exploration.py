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


def test_an_exploring_env_takes_a_random_action_and_holds_it_for_the_drawn_length(scripted):
    ez = scripted(actions=[1, 0, 3], durations=[3, 1, 2])
    greedy_calls = []

    def greedy():
        greedy_calls.append(1)
        return np.array([2])

    steps = [int(ez.act(1, 1.0, greedy)[0]) for _ in range(9)]
    assert steps == [1, 1, 1, 1, 0, 0, 3, 3, 3]  # each random action, then n = 3, 1, 2 more (the paper's 1 + n)
    assert greedy_calls == []  # every step explored: no forward pass
    # a repeat started under epsilon 1 runs to its end when epsilon drops to 0, then play is greedy
    ez = scripted(actions=[3], durations=[1])
    assert [int(ez.act(1, e, greedy)[0]) for e in (1.0, 0.0, 0.0, 0.0)] == [3, 3, 2, 2]


def test_each_env_keeps_its_own_repeat(scripted):
    ez = scripted(actions=[1, 3], durations=[2, 1])
    greedy = lambda: np.array([0, 2])  # noqa: E731
    assert ez.act(2, 1.0, greedy).tolist() == [1, 3]  # both start a repeat
    assert ez.act(2, 0.0, greedy).tolist() == [1, 3]
    assert ez.act(2, 0.0, greedy).tolist() == [1, 2]  # env 0 repeats, env 1 (1 + 1 steps done) plays greedily
    assert ez.act(2, 0.0, greedy).tolist() == [0, 2]
    assert ez.act(3, 0.0, lambda: np.array([0, 0, 0])).tolist() == [0, 0, 0]  # new number of envs: no carry-over


def test_an_episode_end_cuts_the_repeat_of_its_env_only(scripted):
    ez = scripted(actions=[1, 3], durations=[50, 50])
    greedy = lambda: np.array([0, 2])  # noqa: E731
    assert ez.act(2, 1.0, greedy).tolist() == [1, 3]
    ez.end_episodes(np.array([False, True]))
    assert ez.act(2, 0.0, greedy).tolist() == [1, 2]  # env 1's new episode draws a coin (epsilon 0: greedy)


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
    params = dict(buffer_size=500, learning_starts=32, batch_size=8, seed=0, device="cpu")
    params.update(kwargs)
    params["exploration_kwargs"] = {"ez_greedy_mu": 2.0, **params.get("exploration_kwargs", {})}
    return DDQN("MlpPolicy", make_vec_env("CartPole-v1", n_envs=1, seed=0), **params)


def test_ddqn_holds_random_actions_in_the_burn_in_and_after(monkeypatch):
    model = small_ez_ddqn(learning_starts=10)
    obs = np.zeros((1, 4), dtype=np.float32)
    greedy = int(model.predict(obs, deterministic=True)[0][0])
    other = 1 - greedy  # so that the repeat's action after the burn-in cannot be mistaken for a greedy one
    monkeypatch.setattr(exploration, "sample_duration", Scripted([3, 5]))
    monkeypatch.setattr(model.action_space, "sample", Scripted([greedy, other]))
    burn_in = [int(model._sample_action(learning_starts=10)[0][0]) for _ in range(9)]
    assert burn_in == [greedy] * 4 + [other] * 5  # SB3's burn-in draws 9 independent actions
    model.exploration_rate = 0.0
    after = [int(model.predict(obs)[0][0]) for _ in range(3)]  # the second repeat (1 + 5 steps) has 1 step left
    assert after == [other, greedy, greedy]


def test_learn_holds_each_random_action_until_the_episode_ends(monkeypatch):
    model = small_ez_ddqn(learning_starts=60)
    monkeypatch.setattr(exploration, "sample_duration", lambda mu: 1000)  # longer than any CartPole episode here
    draws = []
    sample = model.action_space.sample
    monkeypatch.setattr(model.action_space, "sample", lambda: draws.append(sample()) or draws[-1])
    model.learn(60)  # all burn-in
    actions = model.replay_buffer.actions[:60, 0, 0].astype(int)
    ends = np.flatnonzero(model.replay_buffer.dones[:60, 0])
    episodes = np.split(actions, ends + 1)
    assert len(ends) >= 2
    assert all(len(set(episode)) == 1 for episode in episodes if len(episode))  # one action per episode
    firsts = [int(episode[0]) for episode in episodes if len(episode)]
    assert firsts == draws  # a fresh random action at each episode start, none in between


def test_ddqn_with_ez_greedy_learns_saves_and_loads(tmp_path):
    model = small_ez_ddqn(exploration_kwargs={"schedule": "linear"}, exploration_fraction=0.5)
    model.learn(200)
    assert model.exploration.repeats is not None
    model.save(tmp_path / "ez.zip")
    loaded = DDQN.load(tmp_path / "ez.zip", device="cpu")
    # the setting is saved, the repeats in progress not
    assert loaded.exploration.ez_greedy_mu == 2.0 and loaded.exploration.schedule == "linear"
    assert loaded.exploration.repeats is None
    plain = small_ez_ddqn(exploration_kwargs={"ez_greedy_mu": None})
    plain.learn(100)
    assert plain.exploration.ez_greedy_mu is None and plain.exploration.repeats is None  # plain epsilon-greedy
    plain.save(tmp_path / "plain.zip")
    assert DDQN.load(tmp_path / "plain.zip", device="cpu").exploration.ez_greedy_mu is None


@pytest.mark.parametrize("mu", [1.0, 0.5, -2.0, "2"])
def test_bad_ez_greedy_mu(mu):
    with pytest.raises(ConfigError, match=r"ez_greedy_mu: must be a number in \(1.0, 100.0\]"):
        small_ez_ddqn(exploration_kwargs={"ez_greedy_mu": mu})
