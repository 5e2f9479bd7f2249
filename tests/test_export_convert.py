"""export (zip for plain SB3, no sb3_mario) and convert (tutorial checkpoint -> DDQN zip), through their CLIs."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch as th
from torch import nn

from sb3_mario import DDQN, make_mario_env, make_mario_vec_env


def run_module(module, *args):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def trained_zip(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "ddqn.zip"
    env = make_mario_vec_env(n_envs=1, vec_env="dummy", seed=0)
    model = DDQN("CnnPolicy", env, buffer_size=200, learning_starts=30, seed=0, device="cpu", n_steps=2)
    model.learn(60)
    model.save(path)
    obs = [env.reset()]
    for a in [1, 1, 0, 1, 0, 0, 1, 1]:
        obs.append(env.step(np.array([a]))[0])
    env.close()
    obs = np.concatenate(obs)
    return path, obs, model.predict(obs, deterministic=True)[0]


def test_export_loads_without_sb3_mario(trained_zip, tmp_path):
    path, obs, expected = trained_zip
    out = tmp_path / "sb3_only.zip"
    result = run_module("sb3_mario.export", path, out)
    assert result.returncode == 0, result.stderr
    np.save(tmp_path / "obs.npy", obs)
    script = textwrap.dedent(
        f"""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] == "sb3_mario":
                    raise ImportError("sb3_mario is blocked in this test")
        sys.meta_path.insert(0, Block())
        import numpy as np
        from stable_baselines3 import DQN
        model = DQN.load({str(out)!r}, device="cpu")
        assert "sb3_mario" not in sys.modules
        print(",".join(map(str, model.predict(np.load({str(tmp_path / "obs.npy")!r}), deterministic=True)[0])))
        """
    )
    blocked = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert blocked.returncode == 0, blocked.stderr[-2000:]
    assert blocked.stdout.strip().splitlines()[-1] == ",".join(map(str, expected))
    # and the original zip really does need sb3_mario (so the test above proves something)
    original = subprocess.run([sys.executable, "-c", script.replace(str(out), str(path))], capture_output=True, text=True)
    assert original.returncode != 0


def test_export_bad_input(tmp_path):
    missing = run_module("sb3_mario.export", tmp_path / "nope.zip", tmp_path / "out.zip")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no such file" in missing.stderr
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    bad = run_module("sb3_mario.export", junk, tmp_path / "out.zip")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert not (tmp_path / "out.zip").exists()


def test_slim_zip_is_small_and_acts_like_the_original(trained_zip, tmp_path):
    path, obs, expected = trained_zip
    out = tmp_path / "slim.zip"
    result = run_module("sb3_mario.export", "--slim", path, out)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size < path.stat().st_size / 3.5
    original, slim = DDQN.load(path, device="cpu"), DDQN.load(out, device="cpu")
    assert (slim.num_timesteps, slim.gamma, slim.n_steps) == (original.num_timesteps, original.gamma, original.n_steps)
    for online, target in zip(slim.q_net.parameters(), slim.q_net_target.parameters()):
        assert online.dtype == th.float32 and th.equal(online, target)
    with th.no_grad():
        q_original = original.q_net(original.q_net.obs_to_tensor(obs)[0])
        q_slim = slim.q_net(slim.q_net.obs_to_tensor(obs)[0])
    assert not th.equal(q_slim, q_original)  # rounded to float16 ...
    th.testing.assert_close(q_slim, q_original, rtol=1e-2, atol=1e-3)  # ... and close
    assert (slim.predict(obs, deterministic=True)[0] == expected).all()
    # a slim zip still loads into a model that can go on learning (with fresh Adam moments)
    slim.set_env(make_mario_vec_env(n_envs=1, vec_env="dummy", seed=1))
    slim.learn(8, reset_num_timesteps=False)
    # not a DQN zip: one line, exit 2, nothing written
    from stable_baselines3.common.save_util import save_to_zip_file

    save_to_zip_file(tmp_path / "other.zip", data={"policy_class": "x"}, params={"policy": {"pi.weight": th.ones(2)}})
    bad = run_module("sb3_mario.export", "--slim", tmp_path / "other.zip", tmp_path / "out.zip")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a DQN-family" in bad.stderr
    assert not (tmp_path / "out.zip").exists()


class MarioNet(nn.Module):
    """The tutorial's network, as published."""

    def __init__(self, input_dim, output_dim):
        super().__init__()
        c, h, w = input_dim
        self.online = self.__build_cnn(c, output_dim)
        self.target = self.__build_cnn(c, output_dim)
        self.target.load_state_dict(self.online.state_dict())

    def forward(self, input, model):
        return self.online(input) if model == "online" else self.target(input)

    def __build_cnn(self, c, output_dim):
        return nn.Sequential(
            nn.Conv2d(in_channels=c, out_channels=32, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(in_channels=32, out_channels=64, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(in_channels=64, out_channels=64, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(3136, 512),
            nn.ReLU(),
            nn.Linear(512, output_dim),
        )


def test_convert_tutorial_checkpoint(tmp_path):
    th.manual_seed(0)
    net = MarioNet((4, 84, 84), 2)
    with th.no_grad():  # make online and target differ, as in a trained checkpoint
        for p in net.target.parameters():
            p.add_(0.01 * th.randn_like(p))
    checkpoint = tmp_path / "mario_net_1.chkpt"
    th.save(dict(model=net.state_dict(), exploration_rate=0.4321), checkpoint)
    out = tmp_path / "converted.zip"
    result = run_module("sb3_mario.convert", checkpoint, out)
    assert result.returncode == 0, result.stderr
    model = DDQN.load(out, device="cpu")
    assert model.exploration_rate == pytest.approx(0.4321)
    env = make_mario_env(seed=0)
    obs = [env.reset()[0]] + [env.step(1)[0] for _ in range(6)]
    env.close()
    obs_u8 = th.as_tensor(np.stack(obs))
    with th.no_grad():
        expected_online = net(obs_u8.float() / 255.0, "online")
        expected_target = net(obs_u8.float() / 255.0, "target")
        got_online = model.q_net(obs_u8)
        got_target = model.q_net_target(obs_u8)
    th.testing.assert_close(got_online, expected_online, rtol=1e-5, atol=1e-6)
    th.testing.assert_close(got_target, expected_target, rtol=1e-5, atol=1e-6)
    model.set_env(make_mario_vec_env(n_envs=1, vec_env="dummy"))
    model.learning_starts = 10
    model.learn(12)  # the exploration schedule continues from the stored rate
    assert model.exploration_rate == pytest.approx(0.4321 * 0.99999975**model.num_timesteps)


def test_convert_bad_checkpoint(tmp_path):
    wrong = tmp_path / "wrong.chkpt"
    th.save({"weights": th.zeros(3)}, wrong)
    result = run_module("sb3_mario.convert", wrong, tmp_path / "out.zip")
    assert result.returncode == 2 and "expected a torch.save()d dict with 'model'" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    missing_layer = tmp_path / "partial.chkpt"
    state = MarioNet((4, 84, 84), 2).state_dict()
    del state["target.9.bias"]
    th.save(dict(model=state, exploration_rate=0.5), missing_layer)
    result = run_module("sb3_mario.convert", missing_layer, tmp_path / "out.zip")
    assert result.returncode == 2 and "missing 'target.9.bias'" in result.stderr
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    result = run_module("sb3_mario.convert", text, tmp_path / "out.zip")
    assert result.returncode == 2 and "cannot read as a torch checkpoint" in result.stderr
    assert not (tmp_path / "out.zip").exists()


def test_export_refuses_a_dueling_head(tmp_path):
    from stable_baselines3.common.env_util import make_vec_env

    model = DDQN("MlpPolicy", make_vec_env("CartPole-v1"), policy_kwargs={"dueling": True}, device="cpu")
    model.save(tmp_path / "dueling.zip")
    result = run_module("sb3_mario.export", tmp_path / "dueling.zip", tmp_path / "out.zip")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "a dueling head has no stable-baselines3 equivalent" in result.stderr
    assert not (tmp_path / "out.zip").exists()
