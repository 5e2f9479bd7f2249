"""The training CLI end to end on the real env with tiny budgets: files, config, TensorBoard, signals, resume,
worker crash, enjoy, plot, and every bad input."""

import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import imageio.v2 as imageio
import numpy as np
import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sb3_mario import DDQN
from sb3_mario.config import StepSchedule
from sb3_mario.enjoy import main as enjoy_main
from sb3_mario.plot import main as plot_main
from sb3_mario.plot import read_monitor
from sb3_mario.runs import read_model_data
from sb3_mario.train import main as train_main

ENV = "SuperMarioBros-1-1-v0"
# tiny budgets; short episodes so that runs finish episodes (and evaluations) quickly
TINY = [
    "-params",
    "buffer_size:400",
    "learning_starts:64",
    "target_update_interval:100",
    # few, small gradient steps: the 1-1 network's update is most of a tiny run's time, and what these tests check
    # (files, resume, signals, reproducibility) does not depend on how many there are, only that there are some
    "batch_size:8",
    "train_freq:8",
    "env_kwargs:{max_episode_steps: 100}",
    "stop_flag_rate:null",  # the 1-1 entry stops at 50 % flags: tiny runs train their whole budget
]


# one torch thread per CLI process: bit-reproducible runs, and no oversubscription beside env worker processes
CLI_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_cli(module, *args, timeout=240, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=CLI_ENV,
        **kwargs,
    )


def train(tmp_path, *args):
    return run_cli("sb3_mario.train", "-f", tmp_path / "logs", "--vec-env", "dummy", "--verbose", "0", *args)


def train_here(run_main, tmp_path, *args):
    """``train(tmp_path, *args)`` through the CLI's main in this process (conftest's ``run_main``): for refusals,
    which never get to install signal handlers or start envs."""
    return run_main(train_main, "-f", tmp_path / "logs", "--vec-env", "dummy", "--verbose", "0", *args)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    result = train(
        tmp, "-n", 256, "--eval-freq", 128, "--eval-episodes", 1, "--confirm-episodes", 1, "--save-freq", 128,
        "--save-replay-buffer", "--verbose", 1, *TINY,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, tmp / "logs" / "ddqn" / f"{ENV}_1", result


def test_run_folder_files(tiny_run):
    _, run, result = tiny_run
    assert "done at 2" in result.stdout
    # each evaluation line says how the greedy policy splits its steps (a constant policy shows as 0 % / 100 %)
    assert re.search(r"^eval at \d+ steps: .*; greedy actions \[right\] \d+%, \[right, A\] \d+%$", result.stdout, re.M)
    assert result.stderr == ""
    for name in (
        f"{ENV}.zip",
        "best_model.zip",
        "evaluations.npz",
        "config.yml",
        "args.yml",
        "command.txt",
        "0.monitor.csv",
        "checkpoints/latest.yml",
        "checkpoints/replay_buffer.pkl",
        "checkpoints/model_128_steps.zip",
        "checkpoints/model_256_steps.zip",
    ):
        assert (run / name).is_file(), name
    assert not list(run.rglob("*.tmp*"))  # atomic writes leave no temporaries behind
    model = DDQN.load(run / f"{ENV}.zip", device="cpu")
    assert model.num_timesteps >= 256 and model.mario_env == {
        "env_id": ENV,
        "actions": "tutorial",
        "frame_skip": 4,
        "screen_size": 42,
        "frame_stack": 4,
        "max_pool": False,
        "max_episode_steps": 100,  # TINY's
        "noop_max": 30,
        "reward_scale": 0.1,
        "flag_reward": 0.0,
        "repeat_jump": False,
        "sticky_actions": 0.25,
        "stall_steps": None,
        "show_buttons": True,
        "frontier_starts": 0.5,
        "frontier_rule": "death",
    }  # hyperparams/ddqn.yml's 1-1 entry (the recipe), with TINY's env_kwargs merged in, every make_mario_env setting named
    assert yaml.safe_load((run / "checkpoints/latest.yml").read_text())["num_timesteps"] >= 256
    evaluations = np.load(run / "evaluations.npz")
    assert list(evaluations["timesteps"]) == [128, 256] and "successes" in evaluations
    assert "sb3_mario.train" in (run / "command.txt").read_text()


def test_best_model_replays_its_evaluation_on_the_recorded_seeds(tiny_run):
    # the weights evaluated during training are the weights saved: best_model.zip, played again on the seeds its
    # evaluation row recorded, gives the same flags and the same furthest x
    from sb3_mario.evaluation import evaluate_protocol

    _, run, _ = tiny_run
    rows = np.load(run / "evaluations.npz")
    best = max(range(len(rows["timesteps"])), key=lambda i: (rows["flag_rate"][i], rows["mean_x"][i]))
    model = DDQN.load(run / "best_model.zip", device="cpu")
    replay = evaluate_protocol(model, model.mario_env, int(rows["episodes"][best]), int(rows["seed"][best]))
    assert replay.flag_rate == rows["flag_rate"][best]
    assert replay.mean_x == pytest.approx(rows["mean_x"][best])


def test_tensorboard_has_mario_metrics(tiny_run):
    _, run, _ = tiny_run
    events = EventAccumulator(str(next((run / "tensorboard").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for tag in (
        "rollout/ep_x_pos_mean",
        "rollout/flag_rate",
        "rollout/best_x_pos",
        "eval/mean_x_pos",
        "eval/flag_rate",
        "eval/time_share",
        "train/loss",
        "train/argmax_disagreement",
        "rollout/exploration_rate",
    ):
        assert tag in tags, tag
    assert events.Scalars("rollout/ep_x_pos_mean")[-1].value > 0


def test_config_yml_reproduces_the_run(tiny_run, tmp_path):
    _, run, _ = tiny_run
    again = train(tmp_path, "-n", 256, "--eval-freq", 0, "-conf", run / "config.yml", "--seed", 0)
    assert again.returncode == 0, again.stderr[-2000:]
    rerun = tmp_path / "logs" / "ddqn" / f"{ENV}_1"
    assert yaml.safe_load((rerun / "config.yml").read_text()) == yaml.safe_load((run / "config.yml").read_text())
    a = DDQN.load(run / f"{ENV}.zip", device="cpu")
    b = DDQN.load(rerun / f"{ENV}.zip", device="cpu")
    for pa, pb in zip(a.policy.parameters(), b.policy.parameters(), strict=True):
        assert np.array_equal(pa.detach().numpy(), pb.detach().numpy())


def own_copy(tiny_run, tmp_path):
    """A copy of the shared run folder that this test may change (tests do not depend on each other's order)."""
    _, shared, _ = tiny_run
    run = tmp_path / "logs" / "ddqn" / shared.name
    shutil.copytree(shared, run)
    return run


def test_resume_continues_steps_buffer_and_exploration(tiny_run, tmp_path, run_main):
    run = own_copy(tiny_run, tmp_path)
    before = DDQN.load(run / f"{ENV}.zip", device="cpu")
    episodes_before = read_monitor(run)
    evaluations_before = np.load(run / "evaluations.npz")["timesteps"].tolist()
    first_command = (run / "command.txt").read_text()
    fixed = run_main(train_main, "-i", run, "-n", 128, "-params", "buffer_size:99", "n_steps:2")
    assert (
        fixed.returncode == 2 and fixed.stderr == "error: -params buffer_size, n_steps: cannot be changed when resuming (-i)\n"
    )
    shape = run_main(train_main, "-i", run, "-n", 128, "-params", "env_kwargs:{frame_stack: 2, actions: simple}")
    assert shape.returncode == 2
    assert shape.stderr == "error: -params env_kwargs actions, frame_stack: cannot be changed when resuming (-i)\n"
    assert (run / "command.txt").read_text() == first_command  # refused before touching the run folder
    result = run_cli(
        "sb3_mario.train", "-i", run, "-n", 128, "--vec-env", "dummy", "--eval-freq", 64, "--eval-episodes", 1,
        "--confirm-episodes", 1, "--verbose", "0",
        "-params", "learning_rate:lin_1e-3_5e-4", "train_freq:4", "autocast_bf16:True", "env_kwargs:{frontier_starts: 0.25}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "loaded replay buffer" in result.stdout
    after = DDQN.load(run / f"{ENV}.zip", device="cpu")
    # -params replace the saved hyperparameters on resume (rl-zoo's behaviour); the others are the model's own
    assert (after.learning_rate.start, after.learning_rate.end) == (1e-3, 5e-4)  # the YAML's schedule, in the zip
    total = before.num_timesteps + 128  # SB3's progress: over the model's steps 0 .. total, so it starts part-way
    assert (
        f"learning rate {1e-3 - 5e-4 * before.num_timesteps / total:.3g} -> 0.0005 (a schedule over steps 0 to {total})"
        in result.stdout
    )
    assert after.train_freq.frequency == 4 and after.autocast_bf16
    assert isinstance(before.learning_rate, StepSchedule)  # the recipe's step down, replaced
    assert before.train_freq.frequency != 4 and not before.autocast_bf16
    assert after.batch_size == before.batch_size
    # env_kwargs given on resume change those keys of the saved env settings and keep the rest
    assert before.mario_env["frontier_starts"] == 0.5
    assert after.mario_env == {**before.mario_env, "frontier_starts": 0.25}
    assert after.num_timesteps >= before.num_timesteps + 128
    assert after.exploration_timesteps == before.exploration_timesteps + (after.num_timesteps - before.num_timesteps)
    assert after._n_updates > before._n_updates
    assert yaml.safe_load((run / "config.yml").read_text())[ENV]["buffer_size"] == 400  # the run's own config
    events = [p for p in (run / "tensorboard").iterdir() if p.is_dir()]
    assert len(events) == 1  # TensorBoard continues in the same run, at the right step
    # nothing of the first session is lost: its episodes and command are kept beside the new ones
    episodes_after = read_monitor(run)
    n_before = len(episodes_before["steps"])
    assert (run / "0.part1.monitor.csv").is_file() and (run / "0.monitor.csv").is_file()
    assert n_before >= 1 and len(episodes_after["steps"]) >= n_before
    np.testing.assert_array_equal(episodes_after["return"][:n_before], episodes_before["return"])
    assert np.all(np.diff(episodes_after["hours"]) >= 0)  # training time continues across sessions
    # nor its evaluations: the new ones are appended to evaluations.npz
    evaluations_after = np.load(run / "evaluations.npz")["timesteps"].tolist()
    assert evaluations_after[: len(evaluations_before)] == evaluations_before
    assert len(evaluations_after) > len(evaluations_before) > 0
    commands = (run / "command.txt").read_text()
    assert commands.startswith(first_command) and commands.count("sb3_mario.train") == 2


def test_a_run_started_from_a_zip_goes_on_from_its_steps_and_training_time(tiny_run, tmp_path, run_main):
    _, shared, _ = tiny_run
    zip_path = shared / f"{ENV}.zip"
    start = read_model_data(zip_path)
    result = train(tmp_path, "-i", zip_path, "-n", 128, "--eval-freq", 0)
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / "logs" / "ddqn" / f"{ENV}_1"  # -i of a zip trains in a new folder
    origin = yaml.safe_load((run / "origin.yml").read_text())
    assert origin == {
        "model": str(zip_path.resolve()),
        "num_timesteps": start["num_timesteps"],
        "training_seconds": start["training_seconds"],
    }
    # its curves start where the model's training ended, not at 0
    episodes = read_monitor(run)
    assert start["num_timesteps"] < episodes["steps"][0] <= start["num_timesteps"] + 128
    assert episodes["hours"][0] > start["training_seconds"] / 3600 > 0
    (run / "origin.yml").write_text("num_timesteps: [")
    broken = run_main(plot_main, run, "-o", tmp_path / "x.png")
    expected = rf"error: {re.escape(str(run / 'origin.yml'))}: unreadable \(\w+\)\n"
    assert broken.returncode == 2 and re.fullmatch(expected, broken.stderr), broken.stderr


def test_a_resume_without_n_goes_on_to_the_runs_total_along_the_same_schedule(tmp_path, run_main):
    # the recipe's learning rate steps down at a fraction of the run's steps: a resume must not redraw it
    first = train(tmp_path, "-n", 128, "--eval-freq", 0, "--save-freq", 64, "--save-replay-buffer", *TINY,
                  "learning_rate:step_1e-3_5e-4_0.75")  # fmt: skip
    assert first.returncode == 0, first.stderr[-2000:]
    run = tmp_path / "logs" / "ddqn" / f"{ENV}_1"
    # a branch from its 64-step checkpoint, in a new folder, goes on to the run's 128, not 64 + 128
    branch_root = tmp_path / "branch"
    branch = run_cli("sb3_mario.train", "-i", run / "checkpoints" / "model_64_steps.zip", "-f", branch_root,
                     "--vec-env", "dummy", "--verbose", 1, "--eval-freq", 0, "--save-replay-buffer")  # fmt: skip
    assert branch.returncode == 0, branch.stderr[-2000:]
    assert "for 64 steps" in branch.stdout
    assert "learning rate 0.001, 0.0005 from step 96 (a step over steps 0 to 128)" in branch.stdout
    # the folder's buffer was saved at step 128: a model at 64 does not train on transitions from its future
    assert (
        f"the replay buffer beside {run / 'checkpoints' / 'model_64_steps.zip'} was saved at step 128, the " in branch.stdout
    )
    assert "loaded replay buffer" not in branch.stdout
    folder = branch_root / "ddqn" / f"{ENV}_1"
    model = DDQN.load(folder / f"{ENV}.zip", device="cpu")
    assert model.num_timesteps == 128 and model.learning_rate(0.2) == 5e-4
    # at its total a resume has nothing to train: one line, exit 0, the folder untouched
    commands = (folder / "command.txt").read_text()
    done = run_main(train_main, "-i", folder, "--vec-env", "dummy")
    assert done.returncode == 0 and done.stdout.endswith("nothing to train (-n N trains N more)\n"), done.stdout
    assert (folder / "command.txt").read_text() == commands
    # -n N trains N more (rl-zoo's -n with -i), and N more is the run's new total; its own buffer, of its step, loads
    more = run_cli("sb3_mario.train", "-i", folder, "-n", 32, "--vec-env", "dummy", "--eval-freq", 0,
                   "--save-replay-buffer")  # fmt: skip
    assert more.returncode == 0, more.stderr[-2000:]
    assert "loaded replay buffer" in more.stdout
    assert DDQN.load(folder / f"{ENV}.zip", device="cpu").num_timesteps == 160
    assert yaml.safe_load((folder / "config.yml").read_text())[ENV]["n_timesteps"] == 160


def test_a_resume_draws_from_its_own_seed(tmp_path):
    # SB3's load seeds everything with the saved model's seed: --seed must win, as with rl-zoo's -i
    base = train(tmp_path, "-n", 64, "--eval-freq", 0, "--seed", 0, *TINY, "env_kwargs:{max_episode_steps: 16}")
    assert base.returncode == 0, base.stderr[-2000:]
    zip_path = tmp_path / "logs" / "ddqn" / f"{ENV}_1" / f"{ENV}.zip"
    episodes = {}
    for name, seed in (("a", 3), ("b", 4), ("c", 3)):
        branch = train(tmp_path / name, "-i", zip_path, "-n", 64, "--eval-freq", 0, "--seed", seed)
        assert branch.returncode == 0, branch.stderr[-2000:]
        folder = tmp_path / name / "logs" / "ddqn" / f"{ENV}_1"
        assert DDQN.load(folder / f"{ENV}.zip", device="cpu").seed == seed
        monitor = read_monitor(folder)
        episodes[name] = list(zip(monitor["steps"], monitor["return"], monitor["x_pos"]))
        assert len(episodes[name]) >= 3
    # another seed, other sticky actions and no-op starts; the same seed, the same run (one torch thread)
    assert episodes["a"] != episodes["b"]
    assert episodes["a"] == episodes["c"]


def test_sb3_dqn_trains_from_its_1_1_entry_and_replays(tmp_path, run_main):
    result = train(tmp_path, "--algo", "dqn", "-n", 200, "--eval-freq", 0, *TINY)
    assert result.returncode == 0, result.stderr[-2000:]
    final = tmp_path / "logs" / "dqn" / f"{ENV}_1" / f"{ENV}.zip"
    from stable_baselines3 import DQN

    from sb3_mario.enjoy import saved_class
    from sb3_mario.runs import read_model_data

    data = read_model_data(final)
    assert saved_class(data) is DQN and data["mario_env"]["sticky_actions"] == 0.25  # the recipe's env, recorded
    played = run_main(enjoy_main, final, "--protocol", "--episodes", 1, "--seed", 1_000_000_000)
    assert played.returncode == 0, played.stderr[-2000:]
    assert "/1 flags" in played.stdout
    assert re.search(r"^greedy actions \[right\] \d+%, \[right, A\] \d+%$", played.stdout, re.M), played.stdout


@pytest.mark.slow  # end to end: two trainings, the first for its whole 7.2 s budget
def test_wall_clock_budget_is_cumulative_over_resumes(tmp_path):
    first = train(tmp_path, "-n", 100_000, "--max-hours", 0.002, "--eval-freq", 0, "-P", *TINY)  # 7.2 s
    assert first.returncode == 0, first.stderr[-2000:]
    run = tmp_path / "logs" / "ddqn" / f"{ENV}_1"
    assert re.search(r"out of time \(0\.\d min of 0\.1 min\)", first.stdout), first.stdout
    assert f"saved {run / (ENV + '.zip')}" in first.stdout
    assert re.search(r"trained 0\.\d min, 0\.0 min left\]", first.stderr), first.stderr  # the -P progress line
    model = DDQN.load(run / f"{ENV}.zip", device="cpu")
    assert 7.2 <= model.training_seconds < 60 and 0 < model.num_timesteps < 100_000
    # resumed with the same budget: the time already trained counts, so it stops at once
    again = run_cli("sb3_mario.train", "-i", run, "--max-hours", 0.002, "--eval-freq", 0, "--vec-env", "dummy")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "out of time" in again.stdout
    resumed = DDQN.load(run / f"{ENV}.zip", device="cpu")
    assert resumed.num_timesteps - model.num_timesteps <= 1 and resumed.training_seconds >= model.training_seconds


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _kill_leftovers():
    yield
    while STARTED:  # a failed test must not leave a trainer (and its env workers) running
        proc = STARTED.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_training(tmp_path, *args):
    cmd = [
        sys.executable,
        "-m",
        "sb3_mario.train",
        "-f",
        str(tmp_path / "logs"),
        "-n",
        "100000",
        "--eval-freq",
        "0",
        "--save-freq",
        "100000",
        "--save-replay-buffer",
        "--verbose",
        "0",
        *TINY,
        *args,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, env=CLI_ENV
    )
    STARTED.append(proc)
    monitor = tmp_path / "logs" / "ddqn" / f"{ENV}_1" / "0.monitor.csv"
    deadline = time.time() + 180
    while time.time() < deadline:  # wait for learning: a few finished episodes after learning_starts
        if monitor.is_file() and len(monitor.read_text().splitlines()) > 6:
            return proc, monitor.parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("training did not start")


@pytest.mark.parametrize(
    "sig, whole_group",
    [(signal.SIGINT, True), pytest.param(signal.SIGTERM, False, marks=pytest.mark.slow)],  # the same save, CI only
)
def test_signal_saves_and_exits_cleanly(tmp_path, sig, whole_group):
    proc, run = start_training(tmp_path, "--n-envs", "2", "--vec-env", "subproc")
    if whole_group:  # Ctrl-C in a terminal: the whole process group, env workers included
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert f"stopped by {signal.Signals(sig).name}" in out and "Traceback" not in err
    model = DDQN.load(run / f"{ENV}.zip", device="cpu")
    assert 0 < model.num_timesteps < 100000
    from stable_baselines3.common.save_util import load_from_pkl

    assert load_from_pkl(run / "checkpoints" / "replay_buffer.pkl").size() > 0


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return b""


def children_of(pid):
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children.get(pid, [])


def test_ctrl_c_during_an_evaluation_abandons_it_and_saves(tmp_path):
    # a 40-episode evaluation in 2 processes takes minutes; Ctrl-C must not wait for it
    cmd = [
        sys.executable, "-m", "sb3_mario.train", "-f", str(tmp_path / "logs"), "-n", "100000", "--vec-env", "dummy",
        "--eval-freq", "128", "--eval-episodes", "40", "--eval-workers", "2", "--save-freq", "0", "--verbose", "0",
        *TINY,
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, env=CLI_ENV
    )
    STARTED.append(proc)
    deadline, workers = time.time() + 180, []
    while not workers:
        assert time.time() < deadline and proc.poll() is None, "no evaluation worker started"
        time.sleep(0.2)
        workers = [p for p in children_of(proc.pid) if b"spawn_main" in cmdline(p)]
    time.sleep(0.5)  # the evaluation is under way
    os.killpg(proc.pid, signal.SIGINT)  # the whole group, as a terminal does: the evaluation worker ignores it
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "stopped by SIGINT" in out and "Traceback" not in err
    run = tmp_path / "logs" / "ddqn" / f"{ENV}_1"
    assert DDQN.load(run / f"{ENV}.zip", device="cpu").num_timesteps >= 128
    assert not (run / "evaluations.npz").exists()  # the abandoned evaluation is not recorded
    assert not any(Path(f"/proc/{w}").exists() for w in workers)  # killed and reaped, not left playing


@pytest.mark.slow  # end to end: a training with 2 env worker processes, one killed
def test_worker_crash_is_clear_and_keeps_work(tmp_path):
    proc, run = start_training(tmp_path, "--n-envs", "2", "--vec-env", "subproc", "--save-freq", "64")
    # SubprocVecEnv workers are children of the forkserver process, itself a child of the trainer
    servers = [p for p in children_of(proc.pid) if b"forkserver" in Path(f"/proc/{p}/cmdline").read_bytes()]
    workers = [w for server in servers for w in children_of(server)]
    assert len(workers) == 2
    # the last env's worker: its sibling has answered the step already, so SB3's close() alone would wait forever
    os.kill(sorted(workers)[-1], signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    # one line, whether the kill came during a step or while a checkpoint asked the workers for frontier counts
    # (not "cannot write ...: Broken pipe": no write failed)
    assert err.count("\n") == 1 and "an env worker process died" in err and "cannot write" not in err, err
    assert (run / f"{ENV}.zip").is_file() and list((run / "checkpoints").glob("model_*_steps.zip"))
    # the final replay buffer is saved at the final model's step, ready for -i
    buffer = pickle.loads((run / "checkpoints" / "replay_buffer.pkl").read_bytes())
    assert buffer.saved_at_step == read_model_data(run / f"{ENV}.zip")["num_timesteps"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["-n", "0"], "must be positive"),
        (["-n", "-5"], "must be positive"),
        (["--env", "SuperMarioBros-9-1-v0"], "unknown Super Mario Bros env id"),
        (["-params", "gama:0.9"], "gama: unknown hyperparameter for ddqn"),
        (["-params", "gamma:high"], "gamma: must be a number in [0.0, 1.0]"),
        (["-params", "batch_size:0"], "batch_size: must be an integer >= 1"),
        (["-params", "learning_rate:lin_fast"], "learning_rate: must be a number in [0, 1], lin_<initial> or"),
        (["-params", "env_kwargs:{frame_skip: 0}"], "env_kwargs.frame_skip: must be an integer >= 1"),
        (["-params", "env_kwargs:{repeat_jump: often}"], "env_kwargs.repeat_jump: must be true or false"),
        (["-params", "env_kwargs:{actions: [[jump]]}"], "env_kwargs.actions: invalid button 'jump'"),
        (["-params", "noequals"], "expected key:value"),
        (["--algo", "dqn", "-params", "exploration_decay:0.9"], "exploration_decay: unknown hyperparameter for dqn"),
        (["-conf", "missing.yml"], "missing.yml: cannot read"),
        (["--device", "tpu"], "--device"),
        (["--device", "cuda:99"], "--device cuda:99: this machine has"),  # SB3 would train on the CPU, saying nothing
        (["-params", "env_kwargs:{flag_reward: -1}"], "env_kwargs.flag_reward: must be a number in"),
        (["-params", "ema_decay:1"], "ema_decay: must be a number in [0.0, 0.999999], got 1"),
        (["-params", "learning_rate:step_1e-4_5e-5_2"], "or step_<initial>_<final>_<at>"),
        (["-i", "nope.zip"], "nope.zip: no such file"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, run_main, args, message):
    result = train_here(run_main, tmp_path, *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    if "usage:" not in result.stderr:
        assert result.stderr.count("\n") == 1
    assert not (tmp_path / "logs").exists()  # nothing built before validation


@pytest.mark.parametrize(
    "args, message", [(["-n", "0"], "must be positive"), (["-params", "gama:0.9"], "gama: unknown hyperparameter for ddqn")]
)
def test_bad_input_in_a_fresh_process_exits_2_with_one_line(tmp_path, args, message):
    # the same refusals as `python -m sb3_mario.train` prints them: an argparse error and a hyperparameter error
    result = train(tmp_path, *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    if "usage:" not in result.stderr:
        assert result.stderr.count("\n") == 1
    assert not (tmp_path / "logs").exists()  # nothing built before validation


def test_bad_files_exit_2(tmp_path, run_main):
    bad_yaml = tmp_path / "bad.yml"
    bad_yaml.write_text("default: {gamma: [0.9\n")
    truncated = tmp_path / "truncated.zip"
    not_zip = tmp_path / "model.zip"
    not_zip.write_text("hello")
    for args, message in [(["-conf", bad_yaml], "invalid YAML"), (["-i", not_zip], "not a zip file")]:
        result = train_here(run_main, tmp_path, *args)
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1
    import zipfile

    with zipfile.ZipFile(tmp_path / "full.zip", "w") as zf:
        zf.writestr("data", "x" * 5000)
        zf.writestr("policy.pth", "y" * 5000)
    truncated.write_bytes((tmp_path / "full.zip").read_bytes()[:3000])
    result = train_here(run_main, tmp_path, "-i", truncated)
    assert result.returncode == 2 and "truncated.zip" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_enjoy_records_a_readable_video(tiny_run, tmp_path, run_main, suffix):
    _, run, _ = tiny_run
    video = tmp_path / f"mario{suffix}"
    result = run_main(enjoy_main, run, "--episodes", 2, "--record", video, "--noop-max", 5)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "episode 0: return" in result.stdout and "episode 1: return" in result.stdout
    if suffix == ".gif":
        frames = imageio.mimread(video)
        assert len(frames) > 10 and frames[0].shape[:2] == (240, 256)
    else:
        capture = cv2.VideoCapture(str(video))
        ok, frame = capture.read()
        assert ok and frame.shape == (240, 256, 3) and capture.get(cv2.CAP_PROP_FRAME_COUNT) > 10


def test_enjoy_and_plot_bad_input(tmp_path, run_main):
    result = run_main(enjoy_main, tmp_path / "missing.zip")
    assert result.returncode == 2 and "no such file" in result.stderr and result.stderr.count("\n") == 1
    result = run_main(plot_main, tmp_path, "-o", tmp_path / "x.png")
    assert result.returncode == 2 and "no Monitor CSV" in result.stderr


def test_plot_writes_png(tiny_run, tmp_path, run_main):
    _, run, _ = tiny_run
    out = tmp_path / "curves.png"
    for extra in ([], ["--time"], ["--labels", "tiny"]):
        out.unlink(missing_ok=True)
        # the command itself in a process of its own, then its options through its main in this process
        result = run_main(plot_main, run, "-o", out, *extra) if extra else run_cli("sb3_mario.plot", run, "-o", out)
        assert result.returncode == 0, result.stderr[-2000:]
        image = imageio.imread(out)
        assert image.shape[0] > 200 and image.shape[1] > 600
    result = run_main(plot_main, run, "-o", out, "--labels", "a", "b")
    assert result.returncode == 2 and "2 labels for 1 runs" in result.stderr and result.stderr.count("\n") == 1


def test_plot_returns_are_in_game_units(tiny_run, tmp_path, run_main):
    # Monitor records returns scaled by the env's reward_scale; plot shows them in the game's units
    _, run, _ = tiny_run
    monitor = (run / "0.monitor.csv").read_text().splitlines()
    scaled = tmp_path / "scaled"
    scaled.mkdir()
    (scaled / "0.monitor.csv").write_text("\n".join([monitor[0], "r,l,t,max_x_pos,flag_get", "12.5,100,1.0,400,False"]))
    config = yaml.safe_load((run / "config.yml").read_text())
    config[ENV]["env_kwargs"]["reward_scale"] = 0.1
    (scaled / "config.yml").write_text(yaml.safe_dump(config))
    episodes = read_monitor(scaled)
    assert episodes["return"].tolist() == [12.5] and episodes["game_return"].tolist() == [125.0]
    del config[ENV]["env_kwargs"]["reward_scale"]  # none given: the game's own
    (scaled / "config.yml").write_text(yaml.safe_dump(config))
    assert read_monitor(scaled)["game_return"].tolist() == [12.5]
    config[ENV]["env_kwargs"]["reward_scale"] = "big"
    (scaled / "config.yml").write_text(yaml.safe_dump(config))
    result = run_main(plot_main, scaled, "-o", tmp_path / "x.png")
    assert result.returncode == 2 and "reward_scale: must be a number in (0.0, 1000000.0], got 'big'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_eval_history_of_an_earlier_session_is_kept(tmp_path):
    from sb3_mario.callbacks import ProtocolEvalCallback

    path = tmp_path / "evaluations.npz"
    rows = dict(
        timesteps=[100, 200], flag_rate=[0.0, 0.5], mean_x=[900.0, 2000.0], episodes=[2, 2],
        confirm_flag_rate=[np.nan, np.nan], seed=[10, 12], next_seed=[12, 14], train_seconds=[5.0, 9.0],
        eval_seconds=[1.0, 2.0], successes=[[False, False], [True, False]], results=[[1.0, 2.0], [3.0, 4.0]],
        ep_lengths=[[10, 10], [20, 20]],
    )  # fmt: skip
    np.savez(path, **rows)
    same = ProtocolEvalCallback({"env_id": ENV}, eval_freq=1, n_eval_episodes=2, seed=0, log_path=path)
    same.load_history()
    # appended to, not replaced; the best bar, the next fresh seed and the evaluation time carry on
    assert [r["timesteps"] for r in same.rows] == [100, 200] and same.best == (0.5, 2000.0)
    assert same.next_seed == 14 and same.eval_seconds == 2.0
    other = ProtocolEvalCallback({"env_id": ENV}, eval_freq=1, n_eval_episodes=3, seed=0, log_path=path)
    other.load_history()  # 3 episodes per row cannot extend 2-episode rows: the old file is set aside, intact
    assert other.rows == [] and other.best == (0.5, 2000.0) and other.next_seed == 14 and not path.exists()
    assert np.load(tmp_path / "evaluations.part1.npz")["timesteps"].tolist() == [100, 200]
