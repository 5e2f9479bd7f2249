"""Optuna search: the search space, the objective (FixedTrial), exact trial counts across workers on the journal
and on a real PostgreSQL server (with a worker killed mid-trial), NaN pruning, best params back into train."""

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from sb3_mario import tune
from sb3_mario.search_space import params_to_hyperparams, sample_ddqn_params, tutorial_params

# tiny trials: few gradient steps of a small network (36x36 frames) and one evaluation episode, short without
# repeat_jump (a held A jumps once: an untrained network's episode ends at the first Goomba, not at the flag). What
# these tests check (trial counts, storage, retries, pruning, the files written) depends on none of it.
TINY = [
    "-params",
    "buffer_size:400",
    "learning_starts:64",
    "batch_size:16",
    "train_freq:8",
    "env_kwargs:{screen_size: 36, repeat_jump: false}",
]
# one torch thread per worker process: several run at once here, beside the other test files
CLI_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def tune_args(tmp_path, *extra):
    return ["-f", str(tmp_path / "logs"), "-n", "200", "--n-evaluations", "1", "--eval-episodes", "1", *TINY, *map(str, extra)]


def run_tune(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "sb3_mario.tune", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=CLI_ENV,
    )


def test_search_space_contains_the_tutorial():
    hp = sample_ddqn_params(optuna.trial.FixedTrial(tutorial_params()))
    assert hp["gamma"] == pytest.approx(0.9) and hp["learning_rate"] == 2.5e-4
    assert hp["exploration_decay"] == pytest.approx(0.99999975, abs=1e-12)
    assert (hp["batch_size"], hp["train_freq"], hp["target_update_interval"], hp["learning_starts"]) == (32, 3, 10000, 10000)
    assert (hp["buffer_size"], hp["n_steps"], hp["exploration_final_eps"]) == (100000, 1, 0.1)
    assert params_to_hyperparams(tutorial_params()) == hp


def test_fixed_trial_objective_returns_a_finite_score(tmp_path):
    args = tune.build_parser().parse_args(tune_args(tmp_path))
    tuner = tune.Tuner(args)
    params = {**tutorial_params(), "one_minus_gamma": 0.01, "n_steps": 3}
    trial = optuna.trial.FixedTrial(params, number=0)
    score = tuner.objective(trial)
    assert np.isfinite(score) and score > 0  # mean max x_pos of the evaluation episodes
    hp = tuner.hyperparams(trial.params)  # the converter reproduces what the trial trained with
    assert hp["gamma"] == pytest.approx(0.99) and hp["n_steps"] == 3 and hp["buffer_size"] == 400  # fixed wins


def test_trial_score_is_the_protocol_flag_rate_then_x():
    from sb3_mario.evaluation import EpisodeResult, ProtocolResult

    def episode(flag, x):
        return EpisodeResult(seed=0, flag=flag, max_x=x, steps=1, noops=0, game_return=0.0)

    two_flags = ProtocolResult((episode(True, 3161), episode(True, 3161), episode(False, 1000)))
    far_no_flag = ProtocolResult((episode(False, 3100),) * 3)
    assert tune.protocol_score(two_flags) == pytest.approx(10_000 * 2 / 3 + (3161 * 2 + 1000) / 3)
    assert tune.protocol_score(far_no_flag) == 3100.0
    assert tune.protocol_score(two_flags) > tune.protocol_score(far_no_flag)  # flags first, however far


def test_two_journal_workers_finish_exactly_max_total(tmp_path):
    args = tune_args(tmp_path, "--n-trials", 3, "--max-total-trials", 3, "--sampler", "random", "--pruner", "none")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sb3_mario.tune", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=CLI_ENV,
        )
        for _ in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    folder = tmp_path / "logs" / "ddqn" / "ddqn_mario"
    storage = JournalStorage(JournalFileBackend(str(folder / "study.journal")))
    trials = optuna.load_study(study_name="ddqn_mario", storage=storage).trials
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 3
    assert all(t.state != TrialState.RUNNING for t in trials)
    assert (folder / "best_hyperparams.yml").is_file() and (folder / "trials.csv").is_file()
    assert (folder / "history.png").read_bytes()[:4] == b"\x89PNG"


def test_nan_reward_prunes_and_study_continues(tmp_path, monkeypatch):
    import gymnasium

    made = []

    class NanReward(gymnasium.Wrapper):
        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, float("nan"), terminated, truncated, info

    from sb3_mario import experiment

    real = experiment.make_mario_vec_env

    def vec_env_with_nan_first_trial(*args, **kwargs):
        made.append(1)
        if len(made) <= 1:  # the training envs of the first trial (evaluations build their own)
            from stable_baselines3.common.env_util import make_vec_env

            from sb3_mario import make_mario_env

            env_kwargs = {k: v for k, v in kwargs.items() if k not in ("n_envs", "vec_env", "seed", "monitor_dir")}
            return make_vec_env(lambda: NanReward(make_mario_env(args[0], **env_kwargs)), n_envs=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment, "make_mario_vec_env", vec_env_with_nan_first_trial)
    args = tune.build_parser().parse_args(tune_args(tmp_path, "--n-trials", 2, "--max-total-trials", 2, "--pruner", "none"))
    tuner = tune.Tuner(args)
    tuner.run()
    states = [t.state for t in tuner.study.trials]
    assert states == [TrialState.PRUNED, TrialState.COMPLETE]


def test_best_params_yaml_round_trips_into_train(tmp_path, run_main):
    result = run_main(tune.main, *tune_args(tmp_path, "--n-trials", 1, "--max-total-trials", 1))  # in this process
    assert result.returncode == 0, result.stderr[-2000:]
    best = tmp_path / "logs" / "ddqn" / "ddqn_mario" / "best_hyperparams.yml"
    cmd = ["-conf", best, "-n", 64, "--eval-freq", 0, "--vec-env", "dummy", "-f", tmp_path / "runs", "--verbose", 0]
    train = subprocess.run(
        [sys.executable, "-m", "sb3_mario.train", *map(str, cmd)], capture_output=True, text=True, timeout=300, env=CLI_ENV
    )
    assert train.returncode == 0, train.stderr[-2000:]
    expected = yaml.safe_load(best.read_text())["SuperMarioBros-1-1-v0"]
    used = yaml.safe_load((tmp_path / "runs/ddqn/SuperMarioBros-1-1-v0_1/config.yml").read_text())
    assert used["SuperMarioBros-1-1-v0"] == {**expected, "n_timesteps": 64}
    export = run_main(tune.main, *tune_args(tmp_path, "--export-trial", 0))
    assert export.returncode == 0 and "trial_0_hyperparams.yml" in export.stdout


def test_bad_input(tmp_path, run_main):
    result = run_main(tune.main, *tune_args(tmp_path, "--sampler", "grid"))
    assert result.returncode == 2 and "invalid choice: 'grid'" in result.stderr
    # in a process of its own: the one line a fresh `python -m sb3_mario.tune` prints (the others: its main, here)
    result = run_tune(*tune_args(tmp_path, "--storage", "postgresql://mario:s3cret@127.0.0.1:9/optuna"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "cannot connect" in result.stderr and "s3cret" not in result.stderr and "127.0.0.1:9" in result.stderr
    folder = tmp_path / "logs" / "ddqn" / "other"
    folder.mkdir(parents=True)
    optuna.create_study(
        study_name="other", direction="minimize", storage=JournalStorage(JournalFileBackend(str(folder / "study.journal")))
    )
    result = run_main(tune.main, *tune_args(tmp_path, "--study-name", "other"))
    assert result.returncode == 2 and "exists with direction minimize" in result.stderr
    result = run_main(tune.main, *tune_args(tmp_path, "-params", "gama:0.9"))
    assert result.returncode == 2 and "gama: unknown hyperparameter" in result.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_binary(name):
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if found is None:
        message = f"PostgreSQL's {name} is missing: install the Debian package postgresql (make test-slow does)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must test distribution on a real server
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def postgres_url():
    """A real PostgreSQL server in a temporary data directory on a loopback port (as user postgres when root)."""
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="sb3_mario_pg_"))
    data = root / "data"
    data.mkdir()
    if as_user:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    subprocess.run(
        [*as_user, pg_binary("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], check=True, capture_output=True
    )
    subprocess.run(
        [
            *as_user,
            pg_binary("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_binary("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow  # end to end: a PostgreSQL server, two workers, one killed; heartbeats and a retried trial
def test_postgres_killed_worker_is_failed_retried_and_count_exact(tmp_path, postgres_url):
    n_total = 3
    args = [
        *tune_args(
            tmp_path,
            "--storage",
            postgres_url,
            "--n-trials",
            n_total,
            "--max-total-trials",
            n_total,
            "--heartbeat-interval",
            1,
            "--grace-period",
            3,
            "--sampler",
            "random",
            "--pruner",
            "none",
            "--study-name",
            "pg",
        )
    ]
    cmd = [sys.executable, "-m", "sb3_mario.tune", *map(str, args)]
    long_trials = list(cmd)
    long_trials[long_trials.index("-n") + 1] = "100000"  # the victim's trials: always killed in the middle
    victim = subprocess.Popen(
        long_trials, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, env=CLI_ENV
    )
    try:
        deadline = time.time() + 120
        study = None
        while time.time() < deadline:  # wait until the victim is inside its first trial
            try:
                study = optuna.load_study(study_name="pg", storage=postgres_url)
                if any(t.state == TrialState.RUNNING for t in study.trials):
                    break
            except KeyError:
                pass
            time.sleep(0.5)
        assert study is not None and victim.poll() is None
        time.sleep(3)
        survivor = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CLI_ENV)
        os.killpg(victim.pid, signal.SIGKILL)  # a real kill, mid-trial
        victim.wait()
        out, err = survivor.communicate(timeout=900)
        assert survivor.returncode == 0, err[-3000:]
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
    trials = optuna.load_study(study_name="pg", storage=postgres_url).trials
    killed = trials[0]
    assert killed.state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert retries and retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert retries[0].params == killed.params
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == n_total


def test_journal_fail_stale_after_requeues_a_dead_workers_trial(tmp_path, run_main):
    folder = tmp_path / "logs" / "ddqn" / "ddqn_mario"
    folder.mkdir(parents=True)
    storage = JournalStorage(JournalFileBackend(str(folder / "study.journal")))
    study = optuna.create_study(study_name="ddqn_mario", storage=storage, direction="maximize")
    dead = study.ask()  # a worker that died mid-trial: RUNNING forever on a journal
    sample_ddqn_params(dead)
    without = run_main(tune.main, *tune_args(tmp_path, "--n-trials", 1, "--max-total-trials", 1))
    assert without.returncode == 0 and "ran 0 trial(s)" in without.stdout  # no automatic sweep of a live-looking trial
    result = run_main(tune.main, *tune_args(tmp_path, "--n-trials", 1, "--max-total-trials", 1, "--fail-stale-after", 0))
    assert result.returncode == 0, result.stderr[-2000:]
    trials = optuna.load_study(study_name="ddqn_mario", storage=storage).trials
    assert trials[0].state == TrialState.FAIL
    retry = trials[1]
    assert retry.user_attrs["retry_of"] == 0 and retry.params == dead.params
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)


def test_train_optimize_is_an_alias_of_tune(tmp_path, run_main):
    from sb3_mario.train import main

    result = run_main(main, "--optimize-hyperparameters", *tune_args(tmp_path, "--n-trials", 1, "--max-total-trials", 1))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "this worker ran 1 trial(s)" in result.stdout
    assert (tmp_path / "logs" / "ddqn" / "ddqn_mario" / "best_hyperparams.yml").is_file()
