"""DrQ's random shift: exact pixels by hand, the same as pad-and-crop, and the images DDQN's gradient step learns on."""

import gymnasium
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from torch.nn import functional as F

from sb3_mario import DDQN, FrameStackReplayBuffer
from sb3_mario.augment import draw_shifts, random_shift
from sb3_mario.ddqn import double_q_target
from sb3_mario.errors import ConfigError


class NoiseImages(gymnasium.Env):
    """Random uint8 images, 2 actions, reward 1 for action 0, episodes of 5 steps."""

    observation_space = gymnasium.spaces.Box(0, 255, (2, 36, 36), np.uint8)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.integers(0, 256, (2, 36, 36), dtype=np.uint8), {}

    def step(self, action):
        self.t += 1
        obs = self.np_random.integers(0, 256, (2, 36, 36), dtype=np.uint8)
        return obs, float(action == 0), self.t >= 5, False, {}


def test_random_shift_by_hand():
    x = th.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5).to(th.uint8)
    out = random_shift(x, np.array([[0, 2], [1, 1]]), pad=1)
    assert out.dtype == th.uint8 and out.shape == x.shape and out.is_contiguous()
    # sample 0: the crop window moves up 1 row (offset 0 - pad) and right 1 column (2 - pad), so the content moves
    # down and left, the border pixel repeating where the window leaves the image: out[i, j] = x[max(i - 1, 0),
    # min(j + 1, 4)]. Channel 1 holds 20..39 as rows 20-24, 25-29, 30-34, 35-39.
    expected = th.tensor(
        [[21, 22, 23, 24, 24], [21, 22, 23, 24, 24], [26, 27, 28, 29, 29], [31, 32, 33, 34, 34]], dtype=th.uint8
    )
    assert th.equal(out[0, 1], expected)
    assert th.equal(out[0, 0], expected - 20) and th.equal(out[0, 2], expected + 20)  # one shift for the whole stack
    assert th.equal(out[1], x[1])  # offsets (pad, pad): no shift
    assert random_shift(x, np.zeros((2, 2), dtype=np.int64), pad=0) is x


def test_random_shift_is_pad_and_crop():
    """DrQ's definition: replicate-pad by ``pad`` pixels, crop the original size at the drawn offset."""
    np.random.seed(0)
    images = th.randint(0, 256, (16, 4, 84, 84), dtype=th.uint8)
    shifts = draw_shifts(16, 4)
    assert shifts.shape == (16, 2) and shifts.min() >= 0 and shifts.max() <= 8 and len(np.unique(shifts)) > 1
    padded = F.pad(images.float(), (4, 4, 4, 4), mode="replicate")
    expected = th.stack([padded[b, :, dy : dy + 84, dx : dx + 84] for b, (dy, dx) in enumerate(shifts)])
    assert th.equal(random_shift(images, shifts, 4).float(), expected)


def image_ddqn(shift=0, **kwargs):
    params = dict(buffer_size=200, learning_starts=0, batch_size=8, seed=0, device="cpu")
    params.update(kwargs)
    return DDQN("CnnPolicy", make_vec_env(NoiseImages, seed=0), replay_buffer_kwargs={"augment_shift": shift}, **params)


def test_train_learns_on_shifted_observations():
    model = image_ddqn(shift=4)
    model.learn(40)
    with th.no_grad():
        for p in model.q_net_target.parameters():
            p.add_(0.1 * th.randn_like(p))
    np.random.seed(11)
    model.replay_buffer.augment_shift = 0  # the same draws, unshifted
    batch = model.replay_buffer.sample(8)
    obs_shifts, next_shifts = draw_shifts(8, 4), draw_shifts(8, 4)  # the buffer's order: the observations', then next's
    model.replay_buffer.augment_shift = 4
    assert not np.array_equal(obs_shifts, next_shifts)  # independent draws

    def loss_on(obs, next_obs):
        with th.no_grad():
            target = double_q_target(
                model.q_net(next_obs), model.q_net_target(next_obs), batch.rewards, batch.dones, model.gamma
            )
            q = th.gather(model.q_net(obs), 1, batch.actions.long())
        return F.smooth_l1_loss(q, target).item()

    expected = loss_on(random_shift(batch.observations, obs_shifts, 4), random_shift(batch.next_observations, next_shifts, 4))
    assert not np.isclose(expected, loss_on(batch.observations, batch.next_observations), rtol=1e-4)
    np.random.seed(11)
    model.train(gradient_steps=1, batch_size=8)
    assert model.logger.name_to_value["train/loss"] == pytest.approx(expected, rel=1e-5)


def test_augment_shift_is_saved_and_checked(tmp_path):
    from sb3_mario.config import build_kwargs

    model = image_ddqn(shift=2)
    assert isinstance(model.replay_buffer, FrameStackReplayBuffer) and model.replay_buffer.augment_shift == 2
    model.save(tmp_path / "m.zip")
    assert DDQN.load(tmp_path / "m.zip", device="cpu").replay_buffer.augment_shift == 2
    image_ddqn().save(tmp_path / "none.zip")
    assert DDQN.load(tmp_path / "none.zip", device="cpu").replay_buffer.augment_shift == 0
    # the YAML key goes to the frame buffer; other buffers have no augmentation
    assert build_kwargs("ddqn", {"augment_shift": 4})["replay_buffer_kwargs"] == {"augment_shift": 4}
    with pytest.raises(ConfigError, match=r"^augment_shift: needs the frame buffer \(image observations\), not ReplayBuffer$"):
        build_kwargs("ddqn", {"augment_shift": 4, "replay_buffer_class": "ReplayBuffer"})
    with pytest.raises(ConfigError, match=r"^augment_shift: must be an integer >= 0, got -1$"):
        image_ddqn(shift=-1)
    with pytest.raises(ConfigError, match=r"^augment_shift: must be an integer >= 0, got 2.5$"):  # on load (-i -params) too
        DDQN.load(tmp_path / "m.zip", device="cpu", replay_buffer_kwargs={"augment_shift": 2.5})


def test_augment_shift_on_resume_needs_the_frame_buffer(tmp_path):
    from stable_baselines3.common.buffers import ReplayBuffer

    from sb3_mario.experiment import resume_model

    env = make_vec_env(NoiseImages, seed=0)
    DDQN("CnnPolicy", env, buffer_size=50, replay_buffer_class=ReplayBuffer, device="cpu").save(tmp_path / "sb3.zip")
    with pytest.raises(ConfigError, match=r"^augment_shift: needs the frame buffer \(image observations\), not ReplayBuffer$"):
        resume_model("ddqn", tmp_path / "sb3.zip", {"augment_shift": 2}, device="cpu")
    image_ddqn().save(tmp_path / "frames.zip")
    assert resume_model("ddqn", tmp_path / "frames.zip", {"augment_shift": 2}, device="cpu").replay_buffer.augment_shift == 2


def test_a_buffer_pickled_before_augmentation_loads_and_samples(tmp_path):
    old = image_ddqn()
    old.learn(20)
    del old.replay_buffer.augment_shift  # as a buffer saved before the option existed
    old.save_replay_buffer(tmp_path / "buffer.pkl")
    for shift in (0, 2):
        model = image_ddqn(shift=shift)
        model.load_replay_buffer(tmp_path / "buffer.pkl")
        assert model.replay_buffer.augment_shift == shift and model.replay_buffer.size() == old.replay_buffer.size()
        model.train(gradient_steps=1, batch_size=8)
