"""Prioritized replay: the sum tree, proportional draws and importance weights by hand, priorities that skip
overwritten slots, the base buffer's frames and n-step returns kept, and DDQN's weighted loss."""

import copy

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from sb3_mario import DDQN, FrameStackReplayBuffer, PrioritizedFrameStackReplayBuffer, make_mario_vec_env
from sb3_mario.buffers import ReplaySamples, with_weights
from sb3_mario.ddqn import double_q_target
from sb3_mario.errors import ConfigError
from sb3_mario.params import DDQN_PARAMS, DQN_PARAMS
from sb3_mario.prioritized import SumTree

OBS = spaces.Box(0, 255, (4, 6, 6), np.uint8)


def test_sum_tree_by_hand():
    tree = SumTree(5)  # 8 leaves, the last 3 empty
    tree.set(np.arange(5), np.array([1.0, 2.0, 3.0, 4.0, 0.5]))
    assert tree.total == 10.5
    # running sums 1, 3, 6, 10, 10.5: a prefix falls in the leaf whose interval holds it
    assert tree.find(np.array([0, 0.99, 1, 2.99, 3, 5.99, 6, 9.99, 10, 10.49])).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    tree.set(np.array([1]), 0.0)
    assert tree.total == 8.5 and tree.find(np.array([1.0])).tolist() == [2]
    assert tree.get(np.array([0, 1, 2])).tolist() == [1.0, 0.0, 3.0]


def filled(buffer_class, n=4, n_steps=1, **kwargs):
    """A buffer of n transitions of one env: frame t is all t, rewards 1, 2, 3 ..., no episode end."""
    buffer = buffer_class(n, OBS, spaces.Discrete(2), device="cpu", n_steps=n_steps, gamma=0.5, **kwargs)
    for t in range(n):
        obs = np.stack([np.full((6, 6), max(t + i - 3, 0), np.uint8) for i in range(4)])[None]
        nxt = np.stack([np.full((6, 6), max(t + i - 2, 0), np.uint8) for i in range(4)])[None]
        buffer.add(obs, nxt, np.array([t % 2]), np.array([t + 1.0]), np.array([False]), [{}])
    return buffer


def test_draws_are_proportional_and_weights_correct_the_bias():
    buffer = filled(PrioritizedFrameStackReplayBuffer, alpha=1.0, beta=1.0, eps=1e-12)
    slots = np.arange(4)
    assert buffer.update_priorities((slots, buffer.generations[slots, 0]), np.array([1.0, 0.0, 3.0, 0.0])) == 4
    np.random.seed(0)
    batch = buffer.sample(4000)
    counts = np.bincount(batch.priority_keys[0], minlength=4)
    # stratified over the priority mass 1 : ~0 : 3 : ~0 -> a quarter and three quarters of the draws, to one draw
    assert abs(counts[0] - 1000) <= 1 and abs(counts[2] - 3000) <= 1 and counts[1] + counts[3] <= 1
    # weights (N P(i))^-beta / max: N = 4, P = 1/4 -> 1; P = 3/4 -> 1/3
    weights = batch.weights.numpy().ravel()
    np.testing.assert_allclose(weights[batch.priority_keys[0] == 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(weights[batch.priority_keys[0] == 2], 1 / 3, rtol=1e-6)


def test_samples_keep_the_base_buffers_frames_and_n_step_returns():
    prioritized = filled(PrioritizedFrameStackReplayBuffer, n=6, n_steps=3)
    plain = filled(FrameStackReplayBuffer, n=6, n_steps=3)
    np.random.seed(1)
    batch = prioritized.sample(8)
    assert isinstance(batch, ReplaySamples) and batch.priority_keys is not None
    same = plain._get_samples(batch.priority_keys[0], env_indices=np.zeros(8, dtype=np.int64))
    for name in ("observations", "actions", "next_observations", "dones", "rewards", "discounts"):
        assert th.equal(getattr(batch, name), getattr(same, name)), name
    # by hand: slot t has rewards t + 1, t + 2, t + 3 discounted by 0.5 (slot 0: 1 + 1 + 0.75), cut at the newest (5)
    for slot, reward, discount in zip(
        batch.priority_keys[0], batch.rewards.ravel().tolist(), batch.discounts.ravel().tolist()
    ):
        steps = min(3, 6 - slot)
        assert reward == sum(0.5**k * (slot + 1 + k) for k in range(steps)) and discount == 0.5**steps


def test_priorities_skip_slots_overwritten_since_sampling():
    buffer = filled(PrioritizedFrameStackReplayBuffer, alpha=0.5, eps=1e-12)
    np.random.seed(2)
    batch = buffer.sample(4)
    # the transition at position 0 is replaced (as newer env steps do while the update is in flight)
    buffer.add(np.zeros((1, 4, 6, 6), np.uint8), np.ones((1, 4, 6, 6), np.uint8), np.array([1]), np.array([0.0]),
               np.array([False]), [{}])  # fmt: skip
    updated = buffer.update_priorities(batch.priority_keys, np.full(4, 4.0))
    assert updated == int((batch.priority_keys[0] != 0).sum())
    others = np.unique(batch.priority_keys[0][batch.priority_keys[0] != 0])
    np.testing.assert_allclose(buffer.tree.get(others), 2.0)  # (|4| + eps) ** 0.5
    assert buffer.tree.get(np.array([0]))[0] == 1.0  # the new transition: the largest priority then (1) ** 0.5
    assert buffer.max_priority == pytest.approx(4.0)
    buffer.add(np.zeros((1, 4, 6, 6), np.uint8), np.ones((1, 4, 6, 6), np.uint8), np.array([1]), np.array([0.0]),
               np.array([False]), [{}])  # fmt: skip
    assert buffer.tree.get(np.array([1]))[0] == pytest.approx(2.0)  # new transitions get the largest priority seen


def test_non_finite_td_errors_take_the_largest_priority_and_sampling_goes_on():
    # a diverged update must not poison the tree's sums (every later draw would land on slot 0, or never end)
    buffer = filled(PrioritizedFrameStackReplayBuffer, alpha=1.0, eps=1e-12)
    slots = np.arange(4)
    buffer.update_priorities((slots, buffer.generations[slots, 0]), np.array([2.0, np.nan, np.inf, 1.0]))
    np.testing.assert_allclose(buffer.tree.get(slots), [2.0, 2.0, 2.0, 1.0])  # the largest priority then: 2
    assert buffer.tree.total == pytest.approx(7.0) and buffer.max_priority == pytest.approx(2.0)
    np.random.seed(3)
    batch = buffer.sample(7)
    assert np.bincount(batch.priority_keys[0], minlength=4).tolist() == [2, 2, 2, 1] and th.isfinite(batch.weights).all()


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"^replay_buffer_kwargs\.alpha: must be a number in \[0\.0, 1\.0\]"):
        PrioritizedFrameStackReplayBuffer(10, OBS, spaces.Discrete(2), alpha=2.0)
    assert DDQN_PARAMS["replay_buffer_class"].check("replay_buffer_class", "PrioritizedFrameStackReplayBuffer")
    with pytest.raises(ConfigError, match=r"^replay_buffer_class: "):  # SB3's DQN would ignore the weights
        DQN_PARAMS["replay_buffer_class"].check("replay_buffer_class", "PrioritizedFrameStackReplayBuffer")


def per_ddqn(**kwargs):
    env = make_mario_vec_env(vec_env="dummy", screen_size=36, seed=0)
    params = dict(buffer_size=300, learning_starts=40, batch_size=8, seed=0, device="cpu", n_steps=2)
    return DDQN("CnnPolicy", env, replay_buffer_class=PrioritizedFrameStackReplayBuffer, **{**params, **kwargs})


def test_ddqn_weights_each_samples_loss_and_reports_td_errors():
    model = per_ddqn(learner_kwargs={"overlap": False})
    model.learn(60)
    np.random.seed(3)
    batch = model.replay_buffer.sample(2)
    weighted = batch._replace(weights=th.tensor([[1.0], [0.0]]))
    env, model.env = model.env, None  # nes-py 9's emulator is a native object that does not copy
    twin = copy.deepcopy(model)
    model.env = env
    with th.no_grad():  # the TD errors by hand, before the gradient step
        q = model.q_net(batch.observations).gather(1, batch.actions.long())
        target = double_q_target(
            model.q_net(batch.next_observations), model.q_net_target(batch.next_observations), batch.rewards,
            batch.dones, batch.discounts,
        )  # fmt: skip
    stats = model._gradient_steps([weighted])
    (slots, generations), td = stats.priorities[0]
    assert slots is batch.priority_keys[0] and generations is batch.priority_keys[1]
    th.testing.assert_close(td, (target - q).abs().flatten())
    # weights (1, 0): the loss is the first sample's Huber loss over the batch of 2
    huber = th.nn.functional.smooth_l1_loss(q[:1], target[:1])
    th.testing.assert_close(stats.metrics["loss"][0], huber / 2)
    plain = twin._gradient_steps([with_weights(ReplayBufferSamples(*batch[:6]))])  # weights of one: the plain loss
    th.testing.assert_close(plain.metrics["loss"][0], th.nn.functional.smooth_l1_loss(q, target))
    assert plain.priorities is None


def test_overlapped_ddqn_writes_priorities_back():
    model = per_ddqn()
    model.learn(200)
    buffer = model.replay_buffer
    priorities = buffer.tree.get(np.arange(buffer.size()))
    assert model._n_updates > 0 and buffer.max_priority != 1.0
    assert len(np.unique(priorities)) > 10  # TD errors replaced the initial priority of the sampled transitions
    assert buffer.tree.total == pytest.approx(priorities.sum())
