"""FrameStackReplayBuffer: exact round trips (property-based), n-step returns by hand, memory, errors."""

import pickle

import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sb3_mario import FrameStackReplayBuffer
from sb3_mario.errors import ConfigError

STACK, SIDE = 4, 6


class FakeStackedEnvs:
    """n_envs frame-stacked "envs" with random frames and scripted episode ends, fed to a buffer as SB3 does."""

    def __init__(self, n_envs, lengths, truncations, rng, repeat_prob=0.1, zero_pad=False):
        self.n_envs, self.lengths, self.truncations, self.rng = n_envs, lengths, truncations, rng
        self.repeat_prob, self.zero_pad = repeat_prob, zero_pad
        self.episode = [0] * n_envs
        self.t = [0] * n_envs
        self.obs = np.stack([self._reset_obs() for _ in range(n_envs)])

    def _frame(self):
        return self.rng.integers(0, 256, size=(SIDE, SIDE), dtype=np.uint8)

    def _reset_obs(self):
        first = self._frame()
        stack = np.repeat(first[None], STACK, axis=0)
        if self.zero_pad:
            stack[:-1] = 0
        return stack

    def step(self, buffer, record):
        next_obs = np.empty_like(self.obs)
        dones = np.zeros(self.n_envs, dtype=bool)
        infos = []
        for e in range(self.n_envs):
            frame = self.obs[e, -1].copy() if self.rng.random() < self.repeat_prob else self._frame()
            next_obs[e] = np.concatenate([self.obs[e, 1:], frame[None]])
            self.t[e] += 1
            length = self.lengths[(self.episode[e] + e) % len(self.lengths)]
            truncated = self.truncations[(self.episode[e] + e) % len(self.truncations)]
            info = {}
            if self.t[e] >= length:
                dones[e] = True
                info["TimeLimit.truncated"] = truncated
            infos.append(info)
        actions = self.rng.integers(0, 3, size=(self.n_envs, 1))
        rewards = self.rng.normal(size=self.n_envs).astype(np.float32)
        pos = buffer.pos
        buffer.add(self.obs.copy(), next_obs.copy(), actions, rewards, dones, infos)
        for e in range(self.n_envs):
            timeout = infos[e].get("TimeLimit.truncated", False)
            record[(pos, e)] = (self.obs[e].copy(), next_obs[e].copy(), actions[e, 0], rewards[e], dones[e] and not timeout)
        self.obs = next_obs
        for e in range(self.n_envs):
            if dones[e]:
                self.episode[e] += 1
                self.t[e] = 0
                self.obs[e] = self._reset_obs()


def make_buffer(buffer_size, n_envs=1, **kwargs):
    space = spaces.Box(0, 255, (STACK, SIDE, SIDE), np.uint8)
    return FrameStackReplayBuffer(buffer_size, space, spaces.Discrete(3), device="cpu", n_envs=n_envs, **kwargs)


def check_all(buffer, record, adds):
    size = buffer.size()
    valid_count = 0
    for pos in range(size):
        for e in range(buffer.n_envs):
            if not buffer._valid(np.array([pos]), np.array([e]))[0]:
                continue
            valid_count += 1
            s = buffer._get_samples(np.array([pos]), env_indices=np.array([e]))
            obs, next_obs, action, reward, done = record[(pos, e)]
            np.testing.assert_array_equal(s.observations[0].numpy(), obs)
            np.testing.assert_array_equal(s.next_observations[0].numpy(), next_obs)
            assert s.actions[0, 0].item() == action
            assert s.rewards[0, 0].item() == pytest.approx(float(reward))
            assert s.dones[0, 0].item() == float(done)
    # these envs write at most three new frames per transition (a zero pad, a reset frame, the next frame),
    # so at least the newest third of the ring's worth of transitions is always valid
    assert valid_count >= min(size, buffer.n_frames // 3 - STACK) * buffer.n_envs
    return valid_count


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_envs=st.integers(1, 3),
    buffer_size=st.integers(4, 40),
    lengths=st.lists(st.integers(1, 25), min_size=1, max_size=6),
    truncations=st.lists(st.booleans(), min_size=1, max_size=4),
    n_adds=st.integers(1, 120),
    save_at=st.integers(0, 120),
    zero_pad=st.booleans(),
    headroom=st.sampled_from([0.0, 1 / 80, 0.5]),
    seed=st.integers(0, 2**16),
)
def test_roundtrip_is_exact(n_envs, buffer_size, lengths, truncations, n_adds, save_at, zero_pad, headroom, seed):
    rng = np.random.default_rng(seed)
    buffer = make_buffer(buffer_size * n_envs, n_envs=n_envs, frame_headroom=headroom)
    envs = FakeStackedEnvs(n_envs, lengths, truncations, rng, zero_pad=zero_pad)
    record: dict = {}
    for i in range(n_adds):
        if i == save_at:  # save/load in the middle, then keep adding to the loaded copy
            check_all(buffer, record, i)
            buffer = pickle.loads(pickle.dumps(buffer))
        envs.step(buffer, record)
    check_all(buffer, record, n_adds)
    batch = buffer.sample(16)
    assert batch.observations.shape == (16, STACK, SIDE, SIDE)


def test_a_saved_buffer_holds_what_was_written_not_its_capacity(tmp_path):
    """A checkpoint early in a run (6k of 100k transitions, the recipe's 4x42x42 frames) writes a small file, through
    SB3's own save_to_pkl / load_from_pkl, and loads back exact, with its capacity, ready to go on."""
    from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl

    space = spaces.Box(0, 255, (STACK, 42, 42), np.uint8)
    buffer = FrameStackReplayBuffer(100_000, space, spaces.Discrete(2), device="cpu")
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, size=space.shape, dtype=np.uint8)
    for t in range(6000):
        done = t % 300 == 299
        nxt = np.concatenate([obs[1:], rng.integers(0, 256, size=(1, 42, 42), dtype=np.uint8)])
        buffer.add(obs, nxt, np.array([[t % 2]]), np.array([t / 10]), np.array([done]), [{}])
        obs = np.repeat(nxt[-1:], STACK, axis=0) if done else nxt
    save_to_pkl(tmp_path / "buffer.pkl", buffer)
    written = (tmp_path / "buffer.pkl").stat().st_size
    assert written < buffer.nbytes() / 3  # the whole capacity's arrays: ~173 MiB
    assert written < 6000 * 1900 + 1_000_000  # one 42x42 frame per transition (plus its 3 reset frames per episode)
    loaded = load_from_pkl(tmp_path / "buffer.pkl")
    assert loaded.nbytes() == buffer.nbytes() and loaded.pos == 6000 and not loaded.full
    for key in (*FrameStackReplayBuffer.transition_arrays, "frames", "frames_written", "_last_next_obs"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(buffer, key), err_msg=key)
    loaded.add(obs, obs, np.array([[1]]), np.array([0.5]), np.array([False]), [{}])
    assert loaded.size() == 6001


def test_a_buffer_saved_at_full_capacity_by_an_earlier_version_loads():
    """tests/data/frame_buffer_full_capacity.pkl was written by the buffer before saves were trimmed (every array at
    its capacity): 13 transitions of FakeStackedEnvs(2, [5, 9, 3], [False, True], seed 7) in a 40-slot buffer."""
    from pathlib import Path

    from stable_baselines3.common.save_util import load_from_pkl

    from sb3_mario.portable import numpy2_pickles

    with numpy2_pickles():  # written under numpy 2: the legacy install path (numpy 1) reads it through the aliases
        loaded = load_from_pkl(Path(__file__).parent / "data" / "frame_buffer_full_capacity.pkl")
    replay, record = make_buffer(40, n_envs=2), {}
    envs = FakeStackedEnvs(2, [5, 9, 3], [False, True], np.random.default_rng(7))
    for _ in range(13):
        envs.step(replay, record)
    assert loaded.pos == 13 and loaded.frames.shape == replay.frames.shape
    check_all(loaded, record, 13)
    # and it saves trimmed from now on
    assert len(pickle.dumps(loaded)) < len(pickle.dumps(loaded.__dict__))


def test_wraparound_with_long_episodes_keeps_every_transition():
    rng = np.random.default_rng(0)
    buffer = make_buffer(50, n_envs=2)
    envs = FakeStackedEnvs(2, [200], [False], rng, repeat_prob=0.0)
    record: dict = {}
    for _ in range(175):
        envs.step(buffer, record)
    assert buffer.full and check_all(buffer, record, 175) == 50


def test_n_step_returns_by_hand():
    gamma, n = 0.5, 3
    buffer = make_buffer(20, n_steps=n, gamma=gamma)
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(12, SIDE, SIDE), dtype=np.uint8)
    stacks = [np.stack([frames[max(0, i - STACK + 1 + j)] for j in range(STACK)]) for i in range(12)]
    # transitions 0..3: episode A, terminated at 3; 4..6: episode B truncated at 6; 7..8: episode C (ongoing)
    rewards = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 3.0, 5.0]
    ends = {3: (True, False), 6: (True, True)}
    for t, r in enumerate(rewards):
        done, trunc = ends.get(t, (False, False))
        buffer.add(
            stacks[t], stacks[t + 1], np.array([[0]]), np.array([r]), np.array([done]), [{"TimeLimit.truncated": trunc}]
        )

    def sample(i):
        s = buffer._get_samples(np.array([i]), env_indices=np.array([0]))
        return s.rewards.item(), s.discounts.item(), s.dones.item(), s.next_observations[0].numpy()

    assert sample(0)[:3] == pytest.approx((1 + 0.5 * 2 + 0.25 * 4, 0.125, 0.0))
    np.testing.assert_array_equal(sample(0)[3], stacks[3])
    assert sample(2)[:3] == pytest.approx((4 + 0.5 * 8, 0.25, 1.0))  # stops at the terminal, done
    np.testing.assert_array_equal(sample(2)[3], stacks[4])
    assert sample(5)[:3] == pytest.approx((32 + 0.5 * 64, 0.25, 0.0))  # stops at the timeout, bootstraps
    assert sample(7)[:3] == pytest.approx((3 + 0.5 * 5, 0.25, 0.0))  # stops at the newest transition
    assert sample(8)[:3] == pytest.approx((5, 0.5, 0.0))
    one = make_buffer(20, n_steps=1, gamma=gamma)
    one.add(stacks[0], stacks[1], np.array([[0]]), np.array([1.0]), np.array([False]), [{}])
    assert one._get_samples(np.array([0]), env_indices=np.array([0])).discounts.item() == 0.5


def test_memory_per_transition_below_target():
    space = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    buffer = FrameStackReplayBuffer(100_000, space, spaces.Discrete(2), device="cpu")
    assert buffer.bytes_per_transition() <= 7200  # SB3: 56448, optimize_memory_usage: 28224
    small = FrameStackReplayBuffer(600, space, spaces.Discrete(2), device="cpu")
    rng = np.random.default_rng(0)
    obs = np.repeat(rng.integers(0, 256, (1, 84, 84), dtype=np.uint8), 4, axis=0)
    for t in range(600):  # fill it with 100-step episodes
        nxt = np.concatenate([obs[1:], rng.integers(0, 256, (1, 84, 84), dtype=np.uint8)])
        done = t % 100 == 99
        small.add(obs, nxt, np.array([[0]]), np.array([0.0]), np.array([done]), [{}])
        obs = np.repeat(nxt[-1:], 4, axis=0) if done else nxt
    assert small.full and small._valid(np.arange(600), np.zeros(600, dtype=int)).all()


def test_optimize_memory_usage_ignored_and_save_load_via_sb3(tmp_path):
    from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl

    buffer = make_buffer(10, optimize_memory_usage=True)
    assert buffer.optimize_memory_usage is False
    rng = np.random.default_rng(0)
    envs, record = FakeStackedEnvs(1, [4], [True], rng), {}
    for _ in range(7):
        envs.step(buffer, record)
    save_to_pkl(tmp_path / "buf.pkl", buffer)
    loaded = load_from_pkl(tmp_path / "buf.pkl")
    check_all(loaded, record, 7)


@pytest.mark.parametrize(
    "space",
    [
        spaces.Box(0, 255, (84, 84), np.uint8),
        spaces.Box(0, 255, (84, 84, 3), np.uint8),
        spaces.Box(0.0, 1.0, (4, 84, 84), np.float32),
        spaces.Discrete(5),
    ],
)
def test_unstackable_space_is_rejected(space):
    with pytest.raises(ConfigError, match="frame-stacked uint8"):
        FrameStackReplayBuffer(10, space, spaces.Discrete(2))


def test_short_episodes_evict_oldest_but_never_return_stale_frames():
    rng = np.random.default_rng(2)
    buffer = make_buffer(20, frame_headroom=0.05)
    envs, record = FakeStackedEnvs(1, [1], [False], rng, repeat_prob=0.0, zero_pad=True), {}
    for _ in range(45):  # 1-step episodes with zero padding write 3 frames per transition
        envs.step(buffer, record)
    valid = check_all(buffer, record, 45)
    assert buffer.full and 0 < valid < 20
    for _ in range(20):  # sampling only returns transitions that check_all verified bit for bit
        s = buffer.sample(8)
        for o in s.observations.numpy():
            assert any(np.array_equal(o, rec[0]) for rec in record.values())
