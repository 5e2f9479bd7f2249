"""The evaluation protocol on the real emulator: its env, seeded reproducible episodes, the score."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import sb3_mario
from sb3_mario.ddqn import CnnPolicy
from sb3_mario.envs import LEGACY_BACKEND
from sb3_mario.evaluation import (
    PROTOCOL_MAX_FRAMES,
    EpisodeResult,
    EvaluationStopped,
    ProtocolResult,
    evaluate_protocol,
    protocol_env_kwargs,
)

ENV = "SuperMarioBros-1-1-v0"


class Constant:
    """A policy that always picks one action (SB3's ``predict`` signature)."""

    def __init__(self, action):
        self.action = action

    def predict(self, obs, deterministic=True):
        assert deterministic
        return np.array(self.action), None


def test_protocol_env_forces_sticky_actions_noops_and_the_frame_cap():
    saved = {"env_id": ENV, "actions": "right_only", "frame_skip": 3, "sticky_actions": 0.0, "noop_max": 0}
    env = protocol_env_kwargs(saved)
    assert env == {
        "env_id": ENV,
        "actions": "right_only",  # the model's own settings...
        "frame_skip": 3,
        "sticky_actions": 0.25,  # ...with the protocol's perturbation, starts and cap
        "noop_max": 30,
        "max_episode_steps": 1334,  # ceil(4000 / 3)
        "stall_steps": None,  # a training aid, always off in the protocol
        "frontier_starts": 0.0,  # so are frontier starts: every protocol episode starts at the level's start
        "flag_reward": 0.0,  # and the flag bonus: returns are the game's
    }
    assert protocol_env_kwargs({"env_id": ENV})["max_episode_steps"] == PROTOCOL_MAX_FRAMES // 4


def test_seeded_episodes_are_reproducible_and_differ():
    # plain right (no jump): Mario walks into the first Goomba; where and when depends on the no-ops and sticky draws
    settings = {"env_id": ENV, "actions": "tutorial", "repeat_jump": True}
    first = evaluate_protocol(Constant(0), settings, n_episodes=3, seed=40)
    assert [e.seed for e in first.episodes] == [40, 41, 42]
    assert len({e.noops for e in first.episodes}) > 1 and all(0 <= e.noops <= 30 for e in first.episodes)
    assert first.flags == 0 and all(200 < e.max_x < 400 for e in first.episodes)  # the first Goomba, at x 296
    again = evaluate_protocol(Constant(0), settings, n_episodes=2, seed=41)
    assert again.episodes == first.episodes[1:]  # episode i is seeded seed + i, whatever the batch


def test_constant_jump_baseline_clears_1_1_with_repeat_jump():
    # the bar a learned agent must beat to mean anything on 1-1 with repeat_jump (README "Evaluation"): holding
    # [right, A] hops through the level, sticky actions or not
    result = evaluate_protocol(Constant(1), {"env_id": ENV, "repeat_jump": True}, n_episodes=2, seed=7)
    assert result.flags == 2 and result.mean_x > 3100
    # every greedy step is counted, on the action chosen: what tells a constant policy from a learned one
    assert all(e.actions == (0, e.steps) for e in result.episodes) and result.action_shares == (0.0, 1.0)
    assert result.action_mix({"actions": [["right"], ["right", "A"]]}) == "[right] 0%, [right, A] 100%"
    # without repeat_jump a held A jumps once, at the start: Mario then walks into the first Goomba (x 296)
    once = evaluate_protocol(Constant(1), {"env_id": ENV, "repeat_jump": False}, n_episodes=1, seed=7)
    assert once.flags == 0 and once.mean_x < 400


def test_score_and_summary_by_hand():
    def episode(flag, x):
        return EpisodeResult(seed=0, flag=flag, max_x=x, steps=10, noops=0, game_return=1.0)

    a = ProtocolResult((episode(True, 3161), episode(False, 1139)))
    b = ProtocolResult((episode(False, 3000),) * 2)
    assert a.flag_rate == 0.5 and a.mean_x == 2150.0 and a.score == (0.5, 2150.0)
    assert a.score > b.score  # flags first
    assert (a + b).n == 4 and (a + b).flags == 1
    assert a.summary() == "1/2 flags (50%), mean x 2150"
    mixed = ProtocolResult((EpisodeResult(0, True, 3161, 8, 0, 1.0, (2, 6)), EpisodeResult(1, False, 900, 4, 0, 1.0, (4, 0))))
    assert mixed.action_shares == (0.5, 0.5)  # 6 of 12 steps each: pooled over steps, not averaged per episode
    assert ProtocolResult((EpisodeResult(0, True, 3161, 8, 0, 1.0, (2, 6)),)).action_mix() == "action 0 25%, action 1 75%"
    assert a.action_shares == () and a.action_mix() == ""  # episodes built without action counts
    # Wilson 95 % intervals, by hand: 8/20 -> center (0.4 + 1.92/20) / 1.192 = 0.4161, half 1.96 x 0.12 / 1.192 = 0.1973
    eight = ProtocolResult((episode(True, 3161),) * 8 + (episode(False, 900),) * 12)
    assert eight.flag_interval() == pytest.approx((0.2188, 0.6134), abs=1e-4)
    assert ProtocolResult((episode(False, 900),) * 20).flag_interval() == pytest.approx((0.0, 0.1611), abs=1e-4)
    assert ProtocolResult((episode(True, 3161),) * 20).flag_interval() == pytest.approx((0.8389, 1.0), abs=1e-4)
    with pytest.raises(ValueError):
        evaluate_protocol(Constant(0), {"env_id": ENV}, n_episodes=0, seed=0)


class FakeModel(Constant):
    """Just what the evaluation callback reads of a model: ``predict``, the step count, a logger."""

    def __init__(self, action, num_timesteps=1000):
        super().__init__(action)
        from stable_baselines3.common.logger import Logger

        self.num_timesteps = num_timesteps
        self.learning_starts = 0
        self.logger = Logger(folder=None, output_formats=[])


def _callback(action, tmp_path, **kwargs):
    from sb3_mario.callbacks import ProtocolEvalCallback

    callback = ProtocolEvalCallback(
        {"env_id": ENV, "repeat_jump": True}, eval_freq=1, log_path=tmp_path / "evaluations.npz", **kwargs
    )
    callback.model = FakeModel(action)
    callback.num_timesteps = 1000
    return callback


def test_stop_rule_needs_a_confirmation_on_fresh_seeds(tmp_path):
    hop = _callback(1, tmp_path, n_eval_episodes=2, confirm_episodes=3, stop_flag_rate=0.9, seed=100)
    assert hop.evaluate() is False  # 2/2 quick, then 3/3 on seeds 102-104: stop
    assert hop.reached is not None and [e.seed for e in hop.reached.episodes] == [102, 103, 104]
    assert hop.reached.flags == 3 and hop.last.n == 5 and hop.best == (1.0, hop.last.mean_x)
    row = np.load(tmp_path / "evaluations.npz")
    assert row["confirm_flag_rate"].tolist() == [1.0] and row["seed"].tolist() == [100]
    assert row["next_seed"].tolist() == [105] and row["successes"].tolist() == [[True, True]]
    # a policy that never flags: no confirmation (its seeds are not spent), training goes on
    walk = _callback(0, tmp_path / "walk", n_eval_episodes=2, confirm_episodes=3, stop_flag_rate=0.9, seed=100)
    assert walk.evaluate() is True and walk.reached is None and walk.next_seed == 102
    assert walk.best == (0.0, 296.0) and np.isnan(np.load(tmp_path / "walk" / "evaluations.npz")["confirm_flag_rate"][0])
    # the next evaluation plays fresh seeds
    walk.evaluate()
    assert np.load(tmp_path / "walk" / "evaluations.npz")["seed"].tolist() == [100, 102]


def test_time_to_clear_reads_the_first_confirmation(tmp_path, capsys):
    from bench import time_to_clear

    def run(name, confirm):
        folder = tmp_path / name
        folder.mkdir()
        np.savez(
            folder / "evaluations.npz", timesteps=[20_000, 40_000, 60_000], flag_rate=[0.4, 0.95, 1.0],
            confirm_flag_rate=confirm, train_seconds=[600.0, 1800.0, 3600.0], eval_seconds=[60.0, 180.0, 360.0],
        )  # fmt: skip
        return folder

    cleared = run("cleared", [np.nan, 0.92, 0.96])
    never = run("never", [np.nan, 0.8, 0.86])
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_mario import DDQN

    ended = DDQN("MlpPolicy", make_vec_env("CartPole-v1"), buffer_size=100, device="cpu")
    ended.num_timesteps, ended.training_seconds = 70_000, 4000.0  # trained on after its last evaluation, to its budget
    ended.save(never / f"{ENV}.zip")
    assert time_to_clear.main([str(cleared), str(never), "--labels", "a", "b"]) == 0
    lines = capsys.readouterr().out.splitlines()
    share = "3 evaluations, 10% of the time evaluating |"
    assert lines[2] == f"| a | **0.50 h** (30 min) | 40000 | 92% of the confirmation | {share}"
    assert lines[3] == f"| b | none in 1.11 h | 70000 | best quick rate 100% | {share}"


def test_bench_run_names_an_unknown_benchmark_in_one_line(capsys):
    from bench import run

    assert run.parse_args([]) == [] and run.parse_args(["env", "learner"]) == ["env", "learner"]
    with pytest.raises(SystemExit) as exit_info:
        run.parse_args(["env", "nope"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "python -m bench.run: error: unknown benchmark nope: choose from env, snapshots, collect, memory, learner, profile, "
        "checkpoint, train, eval"
    )
    # a benchmark that needs the other install path is refused by name in one line, and skipped in a full run
    other = "snapshots" if LEGACY_BACKEND else "train"
    with pytest.raises(SystemExit):
        run.parse_args([other])
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"python -m bench.run: error: cannot run {other}: needs ")


def test_the_gpu_benchmark_says_in_one_line_that_there_is_no_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is here: bench.gpu would measure it")
    result = subprocess.run([sys.executable, "-m", "bench.gpu"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert re.fullmatch(
        r"no CUDA GPU found \(torch [^,]+, (built with CUDA [\d.]+|a CPU-only build)\): nothing measured\n", result.stderr
    )


class DyingPolicy(CnnPolicy):
    """A policy whose copy in an evaluation worker process kills that process as it is built."""

    def __init__(self, *args, **kwargs):
        os._exit(3)


def test_parallel_evaluation_plays_the_same_episodes_and_survives_a_dead_worker(capfd):
    # a fresh network on 36x36 frames: as much an SB3 model with a saved policy as the shipped one (which plays
    # [right, A] at every step of 1-1, ~480 steps an episode), its greedy choice ([right] here) ends each episode at
    # the first Goomba in ~40 steps
    from sb3_mario import DDQN, make_mario_vec_env

    model = DDQN("CnnPolicy", make_mario_vec_env(vec_env="dummy", screen_size=36), buffer_size=50, device="cpu", seed=0)
    seed = 1_000_000_500
    together = evaluate_protocol(model, model.mario_env, 2, seed, n_workers=2)
    assert [e.seed for e in together.episodes] == [seed, seed + 1]
    capfd.readouterr()
    model.policy.__class__ = DyingPolicy  # this process plays with it as before; the worker dies rebuilding it
    alone = evaluate_protocol(model, model.mario_env, 2, seed, n_workers=2)  # so every episode is played here
    err = capfd.readouterr().err
    assert err.count("warning: an evaluation worker failed") == 1 and "playing its episodes here" in err
    assert together == alone  # episode by episode: seeds, flags, furthest x, steps, no-ops, returns


def test_a_stop_request_abandons_the_evaluation_and_its_workers():
    import multiprocessing

    from sb3_mario.evaluation import EvaluationStopped

    model = sb3_mario.load_pretrained(ENV)
    before = set(multiprocessing.active_children())
    for workers in (1, 2):
        asked = []

        def should_stop(asked=asked):
            asked.append(1)
            return len(asked) > 30  # 30 steps into the first episode

        with pytest.raises(EvaluationStopped):
            evaluate_protocol(model, model.mario_env, 4, 1_000_000_600, n_workers=workers, should_stop=should_stop)
        assert len(asked) == 31
        assert set(multiprocessing.active_children()) <= before  # the worker of the other share: killed, not awaited


def test_the_worker_pool_is_kept_for_evaluations_that_need_fewer_workers():
    # --eval-episodes below --eval-workers: the quick evaluation needs fewer workers than the confirmation, and
    # restarting the pool (~6 s a worker) at every evaluation would defeat keeping it
    from sb3_mario.evaluation import _worker_pool, close_workers

    try:
        pool = _worker_pool(2)
        assert _worker_pool(1) is pool and _worker_pool(2) is pool
        assert _worker_pool(3) is not pool  # too small: replaced
    finally:
        close_workers()


class ThreadCounter(Constant):
    """Plain right, noting torch's thread count at every step."""

    def __init__(self):
        super().__init__(0)
        self.threads = set()

    def predict(self, obs, deterministic=True):
        import torch

        self.threads.add(torch.get_num_threads())
        return super().predict(obs, deterministic)


def test_one_process_plays_on_one_torch_thread_and_gives_the_callers_back():
    import torch

    torch.set_num_threads(2)  # the caller's count (a training's learner, a script's default)
    model = ThreadCounter()
    result = evaluate_protocol(model, {"env_id": ENV, "actions": "tutorial"}, n_episodes=1, seed=40)
    assert result.n == 1 and model.threads == {1}  # a one-frame forward pass: a second thread only waits for a core
    assert torch.get_num_threads() == 2
    with pytest.raises(EvaluationStopped):  # abandoned (Ctrl-C in a training): the caller's count comes back too
        evaluate_protocol(model, {"env_id": ENV, "actions": "tutorial"}, n_episodes=1, seed=40, should_stop=lambda: True)
    assert torch.get_num_threads() == 2
