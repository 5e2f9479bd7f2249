"""DDQN: the double-Q target (exact numbers), networks, exploration, update ratio, save/load, determinism, errors."""

import warnings

import gymnasium
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.torch_layers import NatureCNN

from sb3_mario import DDQN, FrameStackReplayBuffer, MarioCNN, make_mario_vec_env
from sb3_mario.ddqn import advantage_learning_target, double_q_target
from sb3_mario.ddqn.experimental import AdvantageLearningDDQN
from sb3_mario.errors import ConfigError


class TwoArmedBandit(gymnasium.Env):
    """One step per episode from a constant observation: action 0 pays 1, action 1 pays 0.9."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 1.0 if action == 0 else 0.9, True, False, {}


def cartpole(n_envs=1, seed=0):
    return make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed)


def small_ddqn(env=None, cls=DDQN, **kwargs):
    params = dict(buffer_size=500, learning_starts=32, batch_size=8, seed=0, device="cpu")
    params.update(kwargs)
    return cls("MlpPolicy", env if env is not None else cartpole(), **params)


def test_double_q_target_by_hand():
    next_q_online = th.tensor([[3.0, 1.0], [2.0, 0.0], [0.0, 5.0]])
    next_q_target = th.tensor([[10.0, 20.0], [30.0, 40.0], [7.0, 8.0]])
    rewards = th.tensor([[1.0], [2.0], [-1.0]])
    dones = th.tensor([[0.0], [1.0], [0.0]])
    target = double_q_target(next_q_online, next_q_target, rewards, dones, 0.9)
    # online picks a'=0, target scores it 10 -> 1 + 0.9 * 10; done -> 2; online picks 1 -> -1 + 0.9 * 8
    np.testing.assert_allclose(target.numpy().ravel(), [10.0, 2.0, 6.2], rtol=1e-6)
    vanilla = rewards + (1 - dones) * 0.9 * next_q_target.max(dim=1, keepdim=True).values
    assert vanilla[0, 0].item() == pytest.approx(19.0) and not th.allclose(target, vanilla)
    # n-step discounts (gamma ** n per sample, shortened at episode ends)
    discounts = th.tensor([[0.729], [0.9], [0.81]])
    target = double_q_target(next_q_online, next_q_target, rewards, dones, discounts)
    np.testing.assert_allclose(target.numpy().ravel(), [1 + 7.29, 2.0, -1 + 0.81 * 8], rtol=1e-6)


def test_train_uses_the_double_q_target():
    model = small_ddqn(learning_starts=0)
    model.learn(64)  # fills the buffer; nets now differ from the fresh target? make them differ explicitly:
    with th.no_grad():
        for p in model.q_net_target.parameters():
            p.add_(th.randn_like(p))
    np.random.seed(123)
    batch = model.replay_buffer.sample(16)
    with th.no_grad():
        online_next = model.q_net(batch.next_observations)
        target_next = model.q_net_target(batch.next_observations)
        q = th.gather(model.q_net(batch.observations), 1, batch.actions.long())
        double = double_q_target(online_next, target_next, batch.rewards, batch.dones, model.gamma)
        vanilla = batch.rewards + (1 - batch.dones) * model.gamma * target_next.max(dim=1, keepdim=True).values
    expected = th.nn.functional.smooth_l1_loss(q, double).item()
    assert not np.isclose(expected, th.nn.functional.smooth_l1_loss(q, vanilla).item())
    np.random.seed(123)
    model.train(gradient_steps=1, batch_size=16)
    assert model.logger.name_to_value["train/loss"] == pytest.approx(expected, rel=1e-5)
    assert 0.0 <= model.logger.name_to_value["train/argmax_disagreement"] <= 1.0
    assert "train/q_mean" in model.logger.name_to_value


def test_advantage_learning_target_by_hand():
    targets = th.tensor([[10.0], [2.0], [6.2]])
    q_target = th.tensor([[1.0, 4.0], [3.0, 0.0], [5.0, 5.0]])
    actions = th.tensor([[0], [0], [1]])
    # gaps to the best action: 4 - 1 = 3, 3 - 3 = 0 (greedy), 5 - 5 = 0 (a tie counts as greedy)
    out = advantage_learning_target(targets, q_target, actions, 0.9)
    np.testing.assert_allclose(out.numpy().ravel(), [10.0 - 0.9 * 3, 2.0, 6.2], rtol=1e-6)
    assert th.equal(advantage_learning_target(targets, q_target, actions, 0.0), targets)


def test_train_uses_the_advantage_learning_target():
    model = small_ddqn(cls=AdvantageLearningDDQN, learning_starts=0, advantage_learning=0.9)
    model.learn(64)
    with th.no_grad():
        for p in model.q_net_target.parameters():
            p.add_(th.randn_like(p))
    np.random.seed(7)
    batch = model.replay_buffer.sample(16)
    with th.no_grad():
        double = double_q_target(
            model.q_net(batch.next_observations), model.q_net_target(batch.next_observations), batch.rewards,
            batch.dones, model.gamma,
        )  # fmt: skip
        q_target = model.q_net_target(batch.observations)
        gaps = q_target.max(dim=1, keepdim=True).values - th.gather(q_target, 1, batch.actions.long())
        q = th.gather(model.q_net(batch.observations), 1, batch.actions.long())
    assert gaps.max() > 0  # some sampled actions are not the target network's greedy ones
    expected = th.nn.functional.smooth_l1_loss(q, double - 0.9 * gaps).item()
    assert not np.isclose(expected, th.nn.functional.smooth_l1_loss(q, double).item())
    np.random.seed(7)
    model.train(gradient_steps=1, batch_size=16)
    assert model.logger.name_to_value["train/loss"] == pytest.approx(expected, rel=1e-5)


def test_advantage_learning_widens_the_action_gap():
    """On a two-action bandit with rewards 1 and 0.9 (gap 0.1), alpha 0.9 learns a gap of 0.1 / (1 - 0.9) = 1."""
    gaps = {}
    for alpha in (0.0, 0.9):
        model = small_ddqn(env=make_vec_env(TwoArmedBandit), cls=AdvantageLearningDDQN, advantage_learning=alpha,
                           learning_starts=0, learning_rate=1e-2, target_update_interval=20, exploration_final_eps=1.0,
                           seed=1)  # fmt: skip
        model.learn(3000)
        q = model.q_net(th.zeros(1, 1)).detach().numpy().ravel()
        gaps[alpha] = q[0] - q[1]
    assert gaps[0.0] == pytest.approx(0.1, abs=0.03)
    assert gaps[0.9] == pytest.approx(1.0, abs=0.15)


def test_networks_separate_synced_and_diverging():
    model = small_ddqn(learning_starts=0, target_update_interval=10_000)
    online, target = list(model.q_net.parameters()), list(model.q_net_target.parameters())
    assert not {id(p) for p in online} & {id(p) for p in target}
    assert all(th.equal(a, b) for a, b in zip(online, target))  # synced at construction
    model.learn(100)
    assert not all(th.equal(a, b) for a, b in zip(online, target))  # trained between syncs
    model.sync_target()
    assert all(th.equal(a, b) for a, b in zip(online, target))


def test_target_sync_every_interval_transitions():
    model = small_ddqn(learning_starts=0, target_update_interval=50, env=cartpole(n_envs=2))
    synced_at = []
    sync = model.sync_target
    model.sync_target = lambda: (synced_at.append(model.num_timesteps), sync())
    model.learn(150)
    assert synced_at == [50, 100, 150]


def test_tutorial_defaults():
    model = DDQN("MlpPolicy", cartpole(), device="cpu")
    assert (model.gamma, model.learning_rate, model.buffer_size, model.batch_size) == (0.9, 2.5e-4, 100_000, 32)
    assert (model.learning_starts, model.train_freq.frequency, model.gradient_steps) == (10_000, 3, 1)
    assert (model.target_update_interval, model.tau, model.max_grad_norm) == (10_000, 1.0, None)
    assert (model.exploration.schedule, model.exploration.decay, model.exploration_final_eps) == (
        "exponential",
        0.99999975,
        0.1,
    )
    assert model.exploration_rate == 1.0 and model.policy.q_net.q_net[0].weight.dtype == th.float32
    assert isinstance(model.policy.optimizer, th.optim.Adam)


@pytest.mark.parametrize("n_envs", [1, 2])
def test_exponential_epsilon(n_envs):
    model = small_ddqn(env=cartpole(n_envs), learning_starts=1000)
    model.learn(300)
    assert model.exploration_rate == pytest.approx(max(0.1, 0.99999975**300), rel=1e-9)
    fast = small_ddqn(env=cartpole(n_envs), learning_starts=1000, exploration_kwargs={"decay": 0.99})
    fast.learn(100)  # SB3 rounds up to whole train_freq rollouts: num_timesteps may end a little past 100
    assert fast.exploration_timesteps == fast.num_timesteps
    assert fast.exploration_rate == pytest.approx(max(0.1, 0.99**fast.num_timesteps), rel=1e-9)
    fast.learn(300, reset_num_timesteps=False)
    assert fast.exploration_rate == 0.1


def test_exploration_continues_after_save_load(tmp_path):
    model = small_ddqn(learning_starts=1000, exploration_kwargs={"decay": 0.995})
    model.learn(200)
    eps = model.exploration_rate
    model.save(tmp_path / "m.zip")
    loaded = DDQN.load(tmp_path / "m.zip", env=cartpole(), device="cpu")
    assert loaded.exploration_rate == pytest.approx(eps)
    loaded.learn(100)  # a fresh learn() call (reset_num_timesteps=True) does not restart the schedule
    steps = model.num_timesteps + loaded.num_timesteps
    assert loaded.exploration_rate == pytest.approx(max(0.1, 0.995**steps), rel=1e-9)
    linear = small_ddqn(learning_starts=1000, exploration_kwargs={"schedule": "linear"}, exploration_fraction=0.5)
    linear.learn(200)  # horizon 100 transitions
    assert linear.exploration_rate == pytest.approx(0.1)
    half = small_ddqn(learning_starts=1000, exploration_kwargs={"schedule": "linear"}, exploration_fraction=1.0)
    half.learn(99)  # horizon: 99 transitions
    half.save(tmp_path / "lin.zip")
    assert half.exploration_rate == pytest.approx(0.1)
    half = small_ddqn(learning_starts=1000, exploration_kwargs={"schedule": "linear"}, exploration_fraction=1.0)
    half.learn(300, callback=lambda _locals, _globals: half.num_timesteps < 60)  # stopped at ~60 of 300
    done = half.exploration_timesteps  # SB3 skips _on_step for the step whose callback stopped training
    assert (
        done in (half.num_timesteps - 1, half.num_timesteps)
        and done < 100
        and half.exploration_rate == pytest.approx(1.0 - 0.9 * done / 300)
    )
    half.save(tmp_path / "lin.zip")
    resumed = DDQN.load(tmp_path / "lin.zip", env=cartpole(), device="cpu")
    assert resumed.exploration_rate == pytest.approx(half.exploration_rate)
    resumed.learn(30)  # continues along the 300-transition horizon, not restarted at 1.0
    assert resumed.exploration_timesteps == done + resumed.num_timesteps
    assert resumed.exploration_rate == pytest.approx(1.0 - 0.9 * (done + resumed.num_timesteps) / 300)


def test_each_env_draws_its_own_coin():
    model = small_ddqn()
    model.exploration_rate = 0.5
    obs = np.zeros((2000, 4), dtype=np.float32)
    greedy, _ = model.predict(obs, deterministic=True)
    np.random.seed(0)
    model.action_space.seed(0)
    actions, _ = model.predict(obs)
    same = (actions == greedy).mean()
    assert 0.7 < same < 0.8  # 0.5 greedy + 0.5 * 0.5 random-but-equal; one coin per batch gives 0.5 or 1.0
    single, _ = model.predict(obs[0])
    assert np.shape(single) == ()


def test_update_ratio_kept_with_more_envs():
    one = small_ddqn(env=cartpole(1), learning_starts=0, train_freq=3)
    two = small_ddqn(env=cartpole(2), learning_starts=0, train_freq=3)
    assert (one.gradient_steps, two.gradient_steps) == (1, 2)
    one.learn(120)
    two.learn(120)
    assert one._n_updates == 40 and two._n_updates == 40  # one update per 3 transitions either way


def test_save_load_roundtrip_and_dqn_load(tmp_path):
    env = make_mario_vec_env(n_envs=1, vec_env="dummy", seed=0)
    model = DDQN("CnnPolicy", env, buffer_size=300, learning_starts=40, seed=0, device="cpu")
    model.learn(80)
    model.save(tmp_path / "ddqn.zip")
    obs = np.stack([env.reset()[0] for _ in range(1)] + [env.step(np.array([1]))[0][0] for _ in range(5)])
    expected, _ = model.predict(obs, deterministic=True)
    for cls in (DDQN, DQN):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. no "n_steps is ignored" from SB3 when the frame buffer is rebuilt
            loaded = cls.load(tmp_path / "ddqn.zip", device="cpu")
        for a, b in zip(model.policy.state_dict().values(), loaded.policy.state_dict().values()):
            assert th.equal(a, b)
        np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)
    loaded = DDQN.load(tmp_path / "ddqn.zip", env=env, device="cpu")
    loaded.learn(50, reset_num_timesteps=False)
    assert loaded.num_timesteps >= 130 and loaded._n_updates > model._n_updates
    env.close()


class ActionRecorder(BaseCallback):
    def __init__(self):
        super().__init__()
        self.actions: list[int] = []

    def _on_step(self) -> bool:
        self.actions.extend(self.locals["actions"].tolist())
        return True


def run_mario(seed, steps=300):
    env = make_mario_vec_env(n_envs=1, vec_env="dummy", seed=seed)
    model = DDQN(
        "CnnPolicy",
        env,
        buffer_size=400,
        learning_starts=60,
        seed=seed,
        device="cpu",
        exploration_kwargs={"decay": 0.99},
        n_steps=3,
    )
    recorder = ActionRecorder()
    losses = []

    class LossRecorder(BaseCallback):
        def _on_rollout_end(self) -> None:
            if "train/loss" in model.logger.name_to_value:
                losses.append(model.logger.name_to_value["train/loss"])

        def _on_step(self) -> bool:
            return True

    model.learn(steps, callback=[recorder, LossRecorder()])
    env.close()
    return recorder.actions, losses, model


def test_determinism_same_seed_same_actions_and_losses():
    actions1, losses1, m1 = run_mario(3)
    actions2, losses2, m2 = run_mario(3)
    assert isinstance(m1.replay_buffer, FrameStackReplayBuffer) and m1.replay_buffer.n_steps == 3
    assert len(actions1) == 300 and actions1 == actions2
    assert len(losses1) > 50 and losses1 == losses2
    for a, b in zip(m1.policy.parameters(), m2.policy.parameters()):
        assert th.equal(a, b)


def test_train_directly_after_construction():
    model = small_ddqn()
    obs = np.zeros((1, 4), dtype=np.float32)
    with pytest.raises(RuntimeError, match="empty"):
        model.train(gradient_steps=1, batch_size=4)
    for i in range(10):
        model.replay_buffer.add(obs + i, obs + i + 1, np.array([i % 2]), np.array([1.0]), np.array([False]), [{}])
    model.train(gradient_steps=2, batch_size=4)
    assert model._n_updates == 2


def test_n_steps_with_frame_buffer_warns_nothing():
    env = make_mario_vec_env(n_envs=1, vec_env="dummy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = DDQN("CnnPolicy", env, n_steps=3, buffer_size=100, device="cpu")
    assert isinstance(model.replay_buffer, FrameStackReplayBuffer)
    assert (model.replay_buffer.n_steps, model.replay_buffer.gamma, model.n_steps) == (3, 0.9, 3)
    env.close()


def test_mario_cnn_matches_nature_cnn():
    space = gymnasium.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    mario, nature = MarioCNN(space), NatureCNN(space)
    nature.load_state_dict(mario.state_dict())
    x = th.rand(3, 4, 84, 84)
    assert th.equal(mario(x), nature(x))
    env = make_mario_vec_env(n_envs=1, vec_env="dummy")
    model = DDQN("CnnPolicy", env, buffer_size=100, device="cpu", policy_kwargs={"features_extractor_class": NatureCNN})
    assert model.policy.net_arch == [] and isinstance(model.q_net.features_extractor, NatureCNN)
    env.close()


@pytest.mark.parametrize(
    "space, match",
    [
        (gymnasium.spaces.Box(-1, 1, (4,), np.float32), "channel-first image"),
        (gymnasium.spaces.Box(0, 255, (4, 20, 20), np.uint8), "at least 36x36"),
        (gymnasium.spaces.Box(0, 255, (84, 84, 4), np.uint8), "channel-first frames"),
        (gymnasium.spaces.Box(0.0, 1.0, (4, 84, 84), np.float32), "uint8"),
    ],
)
def test_mario_cnn_rejects_bad_spaces(space, match):
    with pytest.raises(ConfigError, match=match):
        MarioCNN(space)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"buffer_size": -1}, "buffer_size"),
        ({"train_freq": 0}, "train_freq"),
        ({"exploration_kwargs": {"schedule": "cosine"}}, "exploration_schedule: must be one of exponential, linear"),
        ({"gamma": 1.5}, "gamma"),
        ({"exploration_kwargs": {"decay": 0.0}}, "exploration_decay"),
        ({"learner_kwargs": {"overlap": 1}}, r"^learner_kwargs.overlap: must be true or false, got 1$"),
        (
            {"learner_kwargs": {"bf16": True}},
            r"^learner_kwargs.bf16: unknown key \(valid: autocast_bf16, ema_decay, overlap\)$",
        ),
        ({"n_steps": 0}, "n_steps"),
        ({"max_grad_norm": -1.0}, "max_grad_norm"),
        ({"advantage_learning": 1.0}, r"advantage_learning: must be a number in \[0.0, 0.99\]"),
    ],
)
def test_bad_hyperparameters(kwargs, match):
    cls = AdvantageLearningDDQN if "advantage_learning" in kwargs else DDQN
    with pytest.raises(ConfigError, match=match):
        cls("MlpPolicy", cartpole(), **kwargs)


def test_box_action_space_rejected():
    with pytest.raises(ConfigError, match="Discrete action space"):
        DDQN("MlpPolicy", "Pendulum-v1")


def _mario_ddqn(**kwargs):
    env = make_mario_vec_env("SuperMarioBros-1-2-v0", vec_env="dummy", actions="right_only", screen_size=36, **kwargs)
    return DDQN("CnnPolicy", env, buffer_size=200, learning_starts=20, batch_size=4, n_steps=3, gamma=0.99, device="cpu")


def test_gamma_change_reaches_the_n_step_returns(tmp_path):
    model = _mario_ddqn()
    model.learn(40)
    model.save(tmp_path / "m.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    # a resume override: load(gamma=...) and a buffer loaded afterwards both discount with the new gamma
    resumed = DDQN.load(tmp_path / "m.zip", env=model.get_env(), gamma=0.5, device="cpu")
    assert resumed.gamma == 0.5 and resumed.replay_buffer.gamma == 0.5
    resumed.load_replay_buffer(tmp_path / "buffer.pkl")
    assert resumed.replay_buffer.gamma == 0.5
    rewards = resumed.replay_buffer.rewards[:, 0]
    np.random.seed(0)
    batch = resumed.replay_buffer.sample(8)
    # 3-step discounts are 0.5 ** k (k <= 3, shorter at episode ends), not 0.99 ** k
    assert set(np.round(batch.discounts.numpy().ravel(), 6)) <= {0.5, 0.25, 0.125}
    # one sample's n-step return by hand: r_t + 0.5 r_t+1 + 0.25 r_t+2 (no episode end in the first 40 steps)
    i = 5
    manual = rewards[i] + 0.5 * rewards[i + 1] + 0.25 * rewards[i + 2]
    got = resumed.replay_buffer._get_samples(np.array([i]), env_indices=np.array([0]))
    assert got.rewards.item() == pytest.approx(manual, rel=1e-5)


def test_exploration_fraction_change_acts_on_a_resumed_model(tmp_path):
    model = small_ddqn(exploration_kwargs={"schedule": "linear"}, exploration_fraction=0.5, exploration_final_eps=0.0)
    model.learn(100)
    assert model.exploration_horizon == 50 and model.exploration_rate == 0.0
    model.save(tmp_path / "m.zip")
    resumed = DDQN.load(tmp_path / "m.zip", env=cartpole(), exploration_fraction=1.0, device="cpu")
    assert resumed.exploration_horizon == 100  # the same budget (100), now all of it
    assert resumed.exploration_rate == pytest.approx(0.0)  # 100 of 100 transitions done
    resumed.exploration_timesteps = 25
    assert resumed._exploration_rate() == pytest.approx(0.75)


def test_a_model_built_with_the_python_api_saves_its_env(tmp_path):
    import subprocess
    import sys

    model = _mario_ddqn(max_episode_steps=30)
    assert model.mario_env["env_id"] == "SuperMarioBros-1-2-v0" and model.mario_env["actions"] == "right_only"
    model.save(tmp_path / "api.zip")
    out = subprocess.run(
        [sys.executable, "-m", "sb3_mario.enjoy", str(tmp_path / "api.zip")], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "1/1 flags" in out.stdout or "0/1 flags" in out.stdout
    assert DDQN.load(tmp_path / "api.zip").mario_env == model.mario_env


def test_bf16_autocast_is_ignored_where_the_cpu_emulates_it(monkeypatch):
    from sb3_mario.ddqn import engine

    env = make_mario_vec_env(vec_env="dummy", screen_size=36)
    model = DDQN("CnnPolicy", env, learner_kwargs={"autocast_bf16": True}, device="cpu")
    obs = th.randint(0, 255, (4, 4, 36, 36), dtype=th.uint8).float()
    fp32 = model.q_net(obs)
    for native in (False, True):
        engine.bf16_is_native.cache_clear()
        monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda native=native: native)
        if native:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                q = model.q_values(model.q_net, obs)
            assert not th.equal(q, fp32) and q.dtype == th.float32  # bfloat16 features, a float32 head
            th.testing.assert_close(q, fp32, rtol=0.05, atol=0.05)
        else:
            with pytest.warns(UserWarning, match=r"autocast_bf16 ignored: this CPU \(\w+\) has no native bfloat16"):
                q = model.q_values(model.q_net, obs)
            assert th.equal(q, fp32)  # float32, bit for bit
    engine.bf16_is_native.cache_clear()
    env.close()


def test_native_bf16_is_read_from_the_cpu_flags():
    from sb3_mario.ddqn.engine import cpu_has_native_bf16

    avx512 = "flags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"  # oneDNN says "supported" here, and emulates it
    assert not cpu_has_native_bf16(avx512 * 2)
    assert cpu_has_native_bf16(avx512.replace("avx512_vnni", "avx512_vnni avx512_bf16"))
    assert cpu_has_native_bf16("processor\t: 0\nflags\t\t: avx2 amx_tile amx_bf16\n")
    assert not cpu_has_native_bf16("flags\t\t: avx2 fma\n") and not cpu_has_native_bf16("")


def test_bf16_runs_the_heads_own_forward(monkeypatch):
    # a head with its own forward (a dueling head, say) is not skipped under bfloat16: shown with one that adds 1000
    from sb3_mario.ddqn import engine

    engine.bf16_is_native.cache_clear()
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: True)
    env = make_mario_vec_env(vec_env="dummy", screen_size=36)
    model = DDQN("CnnPolicy", env, learner_kwargs={"autocast_bf16": True}, device="cpu")
    plain_forward = model.q_net.forward
    model.q_net.forward = lambda obs: plain_forward(obs) + 1000.0
    obs = th.randint(0, 255, (4, 4, 36, 36), dtype=th.uint8).float()
    q = model.q_values(model.q_net, obs)
    th.testing.assert_close(q, model.q_net(obs), rtol=0.05, atol=0.05)  # against float32, offset included
    assert q.min() > 900
    assert not hasattr(model.q_net.features_extractor, "__dict__") or "forward" not in vars(
        model.q_net.features_extractor
    )  # the bfloat16 wrapper is gone after the pass
    engine.bf16_is_native.cache_clear()
    env.close()


def test_plain_dqn_load_gets_the_saved_gamma(tmp_path):
    model = small_ddqn(gamma=0.77)
    model.save(tmp_path / "m.zip")
    assert DQN.load(tmp_path / "m.zip", device="cpu").gamma == 0.77
    assert DDQN.load(tmp_path / "m.zip", device="cpu").gamma == 0.77 and model.gamma == 0.77


def test_dueling_head_adds_the_value_to_mean_centred_advantages():
    from gymnasium import spaces

    from sb3_mario.ddqn import DuelingQNetwork, MlpPolicy

    policy = MlpPolicy(spaces.Box(-10, 10, (2,)), spaces.Discrete(3), lambda _: 1e-3, net_arch=[], dueling=True)
    for net in (policy.q_net, policy.q_net_target):
        assert isinstance(net, DuelingQNetwork) and not hasattr(net, "q_net")
    with th.no_grad():
        policy.q_net.value[0].weight.copy_(th.tensor([[1.0, 2.0]]))
        policy.q_net.value[0].bias.fill_(0.5)
        policy.q_net.advantage[0].weight.copy_(th.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        policy.q_net.advantage[0].bias.copy_(th.tensor([0.0, 0.0, 4.0]))
    # obs (1, 3): V = 1 + 6 + 0.5 = 7.5; A = (1, 3, 8), mean 4; Q = 7.5 + (-3, -1, 4)
    q = policy.q_net(th.tensor([[1.0, 3.0]]))
    assert q.tolist() == [[4.5, 6.5, 11.5]]
    assert policy.predict(np.array([1.0, 3.0], dtype=np.float32), deterministic=True)[0] == 2
    plain = MlpPolicy(spaces.Box(-10, 10, (2,)), spaces.Discrete(3), lambda _: 1e-3, net_arch=[])
    assert type(plain.q_net).__name__ == "QNetwork"  # off by default: the tutorial's single stream


def test_dueling_ddqn_learns_saves_and_loads(tmp_path):
    model = small_ddqn(policy_kwargs={"dueling": True, "net_arch": [16]})
    model.learn(200)
    assert model._n_updates > 0
    model.save(tmp_path / "m.zip")
    loaded = DDQN.load(tmp_path / "m.zip", device="cpu")
    assert loaded.policy_kwargs["dueling"] and type(loaded.q_net).__name__ == "DuelingQNetwork"
    obs = th.randn(5, 4)
    assert th.equal(loaded.q_net(obs), model.q_net(obs)) and th.equal(loaded.q_net_target(obs), model.q_net_target(obs))


def test_dueling_head_under_bf16_runs_its_own_forward(monkeypatch):
    from sb3_mario.ddqn import engine

    engine.bf16_is_native.cache_clear()
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: True)
    env = make_mario_vec_env(vec_env="dummy", screen_size=36)
    model = DDQN("CnnPolicy", env, learner_kwargs={"autocast_bf16": True}, device="cpu", policy_kwargs={"dueling": True})
    with th.no_grad():
        model.q_net.value[0].bias.fill_(1000.0)  # the value stream's offset shows in every Q-value
    obs = th.randint(0, 255, (4, 4, 36, 36), dtype=th.uint8).float()
    fp32 = model.q_net(obs)
    q = model.q_values(model.q_net, obs)
    assert q.dtype == th.float32 and q.min() > 900 and not th.equal(q, fp32)  # bfloat16 features, float32 streams
    th.testing.assert_close(q, fp32, rtol=0.05, atol=0.05)
    engine.bf16_is_native.cache_clear()
    env.close()


def test_learning_rate_zero_is_accepted_like_sb3_dqn_and_freezes_the_network():
    """SB3's DQN accepts ``learning_rate=0.0`` (a frozen network, e.g. to collect with a fixed policy); so does DDQN,
    from Python and from the YAML/-params checks."""
    from stable_baselines3 import DQN

    from sb3_mario.config import validate

    DQN("MlpPolicy", "CartPole-v1", learning_rate=0.0, device="cpu")
    model = small_ddqn(learning_starts=0, learning_rate=0.0)
    before = [p.detach().clone() for p in model.q_net.parameters()]
    model.learn(100)
    assert model._n_updates > 0 and model.lr_schedule(0.5) == 0.0
    assert all(th.equal(a, b) for a, b in zip(before, model.q_net.parameters(), strict=True))
    assert validate("ddqn", {"n_timesteps": 1, "learning_rate": 0.0})["learning_rate"] == 0.0
