"""The hyperparameter definitions: every key validated, searched within its range, and resumed by its rule."""

import argparse
import pathlib
import shutil

import numpy as np
import optuna
import pytest
from stable_baselines3.common.env_util import make_vec_env

import sb3_mario
from sb3_mario import DDQN, make_mario_vec_env
from sb3_mario.errors import ConfigError
from sb3_mario.experiment import resume_model
from sb3_mario.params import DDQN_PARAMS, DQN_PARAMS, ENV_PARAMS, RUN_PARAMS, params_of
from sb3_mario.runs import read_model_data
from sb3_mario.search_space import ONE_MINUS, sample_ddqn_params
from sb3_mario.train import Run, build_parser

PRETRAINED = pathlib.Path(sb3_mario.__file__).parent / "pretrained" / "SuperMarioBros-1-1-v0.zip"

# a valid value for every key, different from the defaults, to resume with
NEW_VALUES = {
    "learning_rate": 3e-4, "buffer_size": 777, "learning_starts": 5, "batch_size": 7, "tau": 0.5, "gamma": 0.5,
    "train_freq": 5, "gradient_steps": 2, "replay_buffer_class": "ReplayBuffer", "replay_buffer_kwargs": {},
    "optimize_memory_usage": True, "n_steps": 4, "target_update_interval": 123, "exploration_fraction": 0.3,
    "exploration_initial_eps": 0.9, "exploration_final_eps": 0.02, "max_grad_norm": 5.0, "stats_window_size": 7,
    "policy_kwargs": {"net_arch": [8]}, "exploration_schedule": "linear", "exploration_decay": 0.9,
    "overlap_learning": False, "autocast_bf16": True, "ez_greedy_mu": 3.0, "advantage_learning": 0.5,
    "augment_shift": 2, "ema_decay": 0.5,
    "n_timesteps": 10,
    "policy": "MlpPolicy", "n_envs": 2,
    "env_kwargs": {"noop_max": 3}, "stop_flag_rate": 0.5, "max_hours": 1.0,
    "actions": "right_only", "frame_skip": 3, "screen_size": 40, "frame_stack": 2, "max_pool": True,
    "max_episode_steps": 50, "noop_max": 5, "reward_scale": 0.5, "flag_reward": 50.0, "repeat_jump": True,
    "sticky_actions": 0.1, "stall_steps": 40, "show_buttons": True, "frontier_starts": 0.25, "frontier_rule": "death",
}  # fmt: skip


def test_every_key_has_a_rule_a_check_and_a_test_value():
    tables = [RUN_PARAMS, DQN_PARAMS, DDQN_PARAMS, ENV_PARAMS]
    keys = {k for table in tables for k in table}
    assert keys == set(NEW_VALUES)
    for table in tables:
        for key, param in table.items():
            assert param.resume in ("model", "env", "run", "refuse"), key
            assert param.check(key, NEW_VALUES[key]) is not None or NEW_VALUES[key] is None
            with pytest.raises(ConfigError, match=rf"^{key}(\.\w+)?: "):  # one line that names the key
                param.check(key, object())


def test_search_ranges_lie_inside_the_checks():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(40):
        hp = sample_ddqn_params(study.ask())
        for key, value in hp.items():
            DDQN_PARAMS[key].check(key, value)
    for key, param in DDQN_PARAMS.items():
        if param.search and param.search[0] == "float":
            low, high = param.search[1:3]
            param.check(key, low)
            param.check(key, high)
    assert set(ONE_MINUS) <= {k for k, p in DDQN_PARAMS.items() if p.search}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("params")
    env = make_vec_env("CartPole-v1")
    model = DDQN("MlpPolicy", env, buffer_size=300, learning_starts=10, batch_size=8, device="cpu")
    model.learn(30)
    model.save(folder / "m.zip")
    mario = DDQN(
        "CnnPolicy", make_mario_vec_env(vec_env="dummy", screen_size=36), buffer_size=50, learning_starts=10,
        device="cpu",
    )  # fmt: skip
    mario.save(folder / "mario.zip")
    return folder


@pytest.mark.parametrize("key", [k for k, p in DDQN_PARAMS.items() if p.resume == "model"])
def test_model_keys_act_on_a_resumed_model(saved, key):
    value = NEW_VALUES[key]
    if key == "augment_shift":  # image observations only
        env = make_mario_vec_env(vec_env="dummy", screen_size=36)
        model = resume_model("ddqn", saved / "mario.zip", {key: value}, env, device="cpu")
    else:
        model = resume_model("ddqn", saved / "m.zip", {key: value}, make_vec_env("CartPole-v1"), device="cpu")
    # where each key acts now: exploration's, the buffer's, the learner engine's, or the model's own attribute
    places = {
        "train_freq": lambda: model.train_freq.frequency,
        "exploration_schedule": lambda: model.exploration.schedule,
        "exploration_decay": lambda: model.exploration.decay,
        "ez_greedy_mu": lambda: model.exploration.ez_greedy_mu,
        "augment_shift": lambda: model.replay_buffer.augment_shift,
    }
    assert places.get(key, lambda: getattr(model, key))() == value
    if key == "learning_rate":
        assert model.lr_schedule(1.0) == value
    if key == "gamma":  # n-step buffers discount with it too (tests/test_ddqn.py: the frame buffer's returns)
        assert getattr(model.replay_buffer, "gamma", value) == value
    if key == "exploration_fraction":
        assert model.exploration_horizon == int(value * model.exploration_budget)
    if key == "exploration_decay":  # one key of the saved mapping changed, the others kept
        assert model.exploration.schedule == "exponential"


def _resume_args(saved, zip_name, *params):
    return build_parser().parse_args(["-i", str(saved / zip_name), "-f", str(saved / "logs"), "-params", *params])


@pytest.mark.parametrize("key", [k for k, p in DDQN_PARAMS.items() if p.resume == "refuse"] + ["policy"])
def test_refused_keys_are_one_line_on_resume(saved, key):
    value = NEW_VALUES[key]
    with pytest.raises(ConfigError, match=rf"^-params {key}: cannot be changed when resuming \(-i\)$"):
        Run(_resume_args(saved, "m.zip", f"{key}:{value!r}".replace("'", "")), [])


@pytest.mark.parametrize("key", [k for k, p in ENV_PARAMS.items() if p.resume == "refuse"])
def test_env_keys_that_shape_the_network_are_refused(saved, key):
    value = NEW_VALUES[key]
    with pytest.raises(ConfigError, match=rf"^-params env_kwargs {key}: cannot be changed when resuming \(-i\)$"):
        Run(_resume_args(saved, "mario.zip", f"env_kwargs:{{{key}: {value}}}"), [])


def test_a_zip_saved_before_a_setting_existed_keeps_its_default(saved):
    # the shipped 1-1 model predates show_buttons: its network was trained without the painted buttons
    shutil.copy(PRETRAINED, saved / "old.zip")
    assert "show_buttons" not in read_model_data(saved / "old.zip")["mario_env"]
    with pytest.raises(ConfigError, match=r"^-params env_kwargs show_buttons: cannot be changed when resuming \(-i\)$"):
        Run(_resume_args(saved, "old.zip", "env_kwargs:{show_buttons: true}"), [])
    assert Run(_resume_args(saved, "old.zip", "env_kwargs:{show_buttons: false}"), []).env_kwargs["show_buttons"] is False


@pytest.mark.parametrize("key", [k for k, p in ENV_PARAMS.items() if p.resume == "env"])
def test_env_keys_change_the_saved_env(saved, key):
    value = NEW_VALUES[key]
    run = Run(_resume_args(saved, "mario.zip", f"env_kwargs:{{{key}: {value}}}"), [])
    assert run.env_kwargs[key] == value
    assert run.env_kwargs["screen_size"] == 36  # the rest is the model's own


def test_run_keys_are_run_settings():
    assert {k for k, p in params_of("ddqn").items() if p.resume == "run"} == {
        "n_timesteps", "n_envs", "stop_flag_rate", "max_hours",
    }  # fmt: skip
    assert isinstance(build_parser().parse_args([]), argparse.Namespace)
    assert np.isfinite(NEW_VALUES["max_hours"])


def test_dqn_has_a_search_space_too():
    from sb3_mario.search_space import sample_params

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(10):
        hp = sample_params(study.ask(), "dqn")
        assert "exploration_fraction" in hp and "exploration_schedule" not in hp and "exploration_decay" not in hp
        for key, value in hp.items():
            DQN_PARAMS[key].check(key, value)


def test_zips_name_their_class_and_enjoy_loads_with_it(tmp_path):
    from stable_baselines3 import DQN

    from sb3_mario.config import load_hyperparams
    from sb3_mario.enjoy import saved_class
    from sb3_mario.experiment import make_env, make_model
    from sb3_mario.runs import read_model_data

    for algo, cls in (("dqn", DQN), ("ddqn", DDQN)):
        hp = load_hyperparams(algo, "SuperMarioBros-1-1-v0", overrides={"buffer_size": 50, "env_kwargs": {"screen_size": 36}})
        env = make_env("SuperMarioBros-1-1-v0", hp, seed=0, vec_env="dummy")
        model = make_model(algo, hp, env, seed=0, device="cpu")
        model.save(tmp_path / f"{algo}.zip")
        data = read_model_data(tmp_path / f"{algo}.zip")
        assert data["algo_name"] == algo and data["mario_env"]["screen_size"] == 36
        assert saved_class(data) is cls
        env.close()


def test_dueling_is_a_ddqn_policy_option_only():
    assert DDQN_PARAMS["policy_kwargs"].check("policy_kwargs", {"dueling": True}) == {"dueling": True}
    with pytest.raises(ConfigError, match=r"^policy_kwargs\.dueling: unknown key"):  # SB3's DQN policies have no such head
        DQN_PARAMS["policy_kwargs"].check("policy_kwargs", {"dueling": True})
    with pytest.raises(ConfigError, match=r"^policy_kwargs\.dueling: "):
        DDQN_PARAMS["policy_kwargs"].check("policy_kwargs", {"dueling": "yes"})


def test_every_packaged_entry_validates_and_the_frontier_set_is_the_recorded_run():
    from sb3_mario.config import default_hyperparams_file, load_hyperparams, read_yaml

    sets = (("ddqn", "ddqn"), ("ddqn_tutorial", "ddqn"), ("ddqn_frontier", "ddqn"), ("ddqn_hop", "ddqn"), ("dqn", "dqn"))
    for name, algo in sets:
        for entry in read_yaml(default_hyperparams_file(name)):
            env_id = "SuperMarioBros-1-2-v0" if entry == "default" else entry
            load_hyperparams(algo, env_id, name)  # raises ConfigError on any bad key or value
    # ddqn_frontier is the recipe for every level: the 2026-12-05 frontier-starts run's settings (docs/experiments)
    # with its learning-rate branch (5e-5 from 1.28M) as a step in the schedule; on 1-1 it is also `make train`'s entry
    frontier = load_hyperparams("ddqn", "SuperMarioBros-1-3-v0", "ddqn_frontier")
    assert load_hyperparams("ddqn", "SuperMarioBros-1-1-v0") == frontier
    assert frontier["env_kwargs"] == {
        "actions": "tutorial", "frame_skip": 4, "screen_size": 42, "frame_stack": 4, "max_episode_steps": 1000,
        "reward_scale": 0.1, "flag_reward": 0.0, "repeat_jump": False, "show_buttons": True, "sticky_actions": 0.25,
        "noop_max": 30, "frontier_starts": 0.5, "frontier_rule": "death",
    }  # fmt: skip
    keys = ("learning_rate", "gamma", "n_steps", "train_freq", "exploration_final_eps", "stop_flag_rate", "max_hours")
    assert {k: frontier[k] for k in keys} == {
        "learning_rate": "step_1e-4_5e-5_0.64", "gamma": 0.99, "n_steps": 3, "train_freq": 1,
        "exploration_final_eps": 0.1, "stop_flag_rate": 0.5, "max_hours": 10.0,
    }  # fmt: skip
    # ddqn_hop is the entry `make train` ran until 2026-12-07: repeat_jump, 84x84, bf16, 90 % within 2 h
    hop = load_hyperparams("ddqn", "SuperMarioBros-1-1-v0", "ddqn_hop")
    assert hop["env_kwargs"] == {
        "actions": "tutorial", "frame_skip": 4, "screen_size": 84, "frame_stack": 4, "max_episode_steps": 1000,
        "reward_scale": 0.1, "repeat_jump": True, "sticky_actions": 0.25, "noop_max": 30,
    }  # fmt: skip
    assert {k: hop[k] for k in ("learning_rate", "train_freq", "exploration_final_eps", "autocast_bf16")} == {
        "learning_rate": 1e-4, "train_freq": 2, "exploration_final_eps": 0.01, "autocast_bf16": True,
    }  # fmt: skip


def test_a_linear_learning_rate_is_lin_initial_as_in_rl_zoo_or_lin_initial_final():
    from stable_baselines3 import DQN
    from stable_baselines3.common.utils import LinearSchedule

    from sb3_mario.config import build_kwargs
    from sb3_mario.params import linear_schedule_ends

    check = DDQN_PARAMS["learning_rate"].check
    assert check("learning_rate", "lin_1e-3") == "lin_1e-3"  # kept as written in the config (config.yml, resume)
    assert linear_schedule_ends("learning_rate", "lin_1e-3") == (1e-3, 0.0)  # rl-zoo's linear_schedule: down to 0
    assert linear_schedule_ends("learning_rate", "lin_1e-3_5e-4") == (1e-3, 5e-4)
    for bad in ("lin_", "lin_x", "lin_2", "lin_1e-3_5e-4_1e-4", "cos_1e-3", "lin_nan", "1e-3", True, -1e-4, float("nan")):
        with pytest.raises(ConfigError, match=r"^learning_rate: must be a number in \[0, 1\], lin_<initial> or "):
            check("learning_rate", bad)
    for algo in ("ddqn", "dqn"):
        schedule = build_kwargs(algo, {"learning_rate": "lin_1e-3_5e-4"})["learning_rate"]
        assert isinstance(schedule, LinearSchedule)  # SB3's class: pickled by name, loads on either Python
        # SB3's progress_remaining: 1 at the run's step 0, 0 at its total (a fresh run's -n; a resume's steps + its -n)
        assert [schedule(p) for p in (1.0, 0.5, 0.0)] == pytest.approx([1e-3, 7.5e-4, 5e-4], rel=1e-12)
    with pytest.raises(ConfigError, match=r"^learning_rate: must be a number in \[0.0, 1.0\], got 'lin_1e-3'$"):
        DDQN("MlpPolicy", make_vec_env("CartPole-v1"), learning_rate="lin_1e-3", device="cpu")  # the YAML's form only
    # SB3's DQN (--algo dqn) follows it too: the last of 60 steps updates with the final rate
    dqn_kwargs = build_kwargs("dqn", {"learning_rate": "lin_1e-3_5e-4", "learning_starts": 10, "train_freq": 1})
    dqn = DQN("MlpPolicy", make_vec_env("CartPole-v1"), device="cpu", **dqn_kwargs).learn(60)
    assert dqn.policy.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4, rel=1e-9)


def test_a_learning_rate_that_steps_down_once_is_step_initial_final_at(tmp_path):
    from stable_baselines3 import DQN

    from sb3_mario.config import StepSchedule, build_kwargs
    from sb3_mario.export import export_to_sb3
    from sb3_mario.params import step_schedule_parts

    check = DDQN_PARAMS["learning_rate"].check
    assert check("learning_rate", "step_1e-4_5e-5_0.64") == "step_1e-4_5e-5_0.64"
    assert step_schedule_parts("learning_rate", "step_1e-4_5e-5_0.64") == (1e-4, 5e-5, 0.64)
    for bad in ("step_1e-4_5e-5", "step_1e-4_5e-5_0", "step_1e-4_5e-5_1", "step_2_1e-4_0.5", "step_a_b_c", "step_"):
        with pytest.raises(ConfigError, match=r"or step_<initial>_<final>_<at> \(at: the fraction"):
            check("learning_rate", bad)
    schedule = build_kwargs("ddqn", {"learning_rate": "step_1e-4_5e-5_0.64"})["learning_rate"]
    assert isinstance(schedule, StepSchedule)
    # SB3's progress_remaining 1 -> 0 over the run: a 2M-step run steps down at 1.28M (remaining 0.36)
    assert [schedule(p) for p in (1.0, 0.5, 0.3600001, 0.36, 0.0)] == [1e-4, 1e-4, 1e-4, 5e-5, 5e-5]
    # a 100-step run: Adam's rate is the initial one until step 64, the final one after; it saves and loads
    kwargs = build_kwargs("ddqn", {"learning_rate": "step_1e-3_5e-4_0.64", "learning_starts": 10, "train_freq": 1})
    model = DDQN("MlpPolicy", make_vec_env("CartPole-v1"), device="cpu", **kwargs)
    rates = []
    model.train = lambda *a, _train=model.train, **k: (
        _train(*a, **k),
        rates.append(model.policy.optimizer.param_groups[0]["lr"]),
    )
    model.learn(100)
    # train() runs at steps 11-100 (after learning_starts); at step t the progress done is t / 100: 1e-3 up to step 63
    assert len(rates) == 90 and rates.count(1e-3) == 53 and rates[53:] == [5e-4] * 37
    del model.train
    model.save(tmp_path / "step.zip")
    assert DDQN.load(tmp_path / "step.zip").lr_schedule(0.0) == 5e-4
    # the zip for plain SB3 (export) drops the schedule, which names an sb3_mario class, and loads
    assert {"learning_rate", "lr_schedule"} <= set(export_to_sb3(tmp_path / "step.zip", tmp_path / "portable.zip"))
    assert DQN.load(tmp_path / "portable.zip", device="cpu").policy is not None


def test_the_learning_rate_schedule_spans_the_runs_steps_and_survives_save_and_resume(saved, tmp_path):
    from stable_baselines3.common.callbacks import BaseCallback

    class Rates(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.rates: dict[int, float] = {}

        def _on_step(self) -> bool:
            self.rates[self.num_timesteps] = self.model.policy.optimizer.param_groups[0]["lr"]
            return True

    # a resume that changes the rate to a schedule (the "model" rule): it acts on the resumed model's optimizer
    env = make_vec_env("CartPole-v1")
    changes = {"learning_rate": "lin_1e-3_5e-4", "train_freq": 1, "overlap_learning": False}  # one update per step
    model = resume_model("ddqn", saved / "m.zip", changes, env, device="cpu")
    start, rates = model.num_timesteps, Rates()
    assert start == 30
    model.learn(100, callback=rates, reset_num_timesteps=False)
    # SB3's progress is the run's steps over its total (here 30 + 100), so a resume whose -n reaches the same total
    # goes on along the same line; a step sees the rate that the previous step's update set
    for t in range(start + 2, start + 101):
        assert rates.rates[t] == pytest.approx(1e-3 - 5e-4 * (t - 1) / (start + 100), rel=1e-9), t
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4, rel=1e-9)  # the end, at the last step
    model.save(tmp_path / "scheduled.zip")
    loaded = DDQN.load(tmp_path / "scheduled.zip", device="cpu")
    assert [loaded.lr_schedule(p) for p in (1.0, 0.0)] == pytest.approx([1e-3, 5e-4], rel=1e-12)
    assert read_model_data(tmp_path / "scheduled.zip")["learning_rate"].end == 5e-4
