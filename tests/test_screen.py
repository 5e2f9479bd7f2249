"""scripts/screen.py: paired branches of one saved run on the real emulator, resumable, and their held-out table."""

import json
import re
import shutil

import numpy as np
import pytest
import yaml
from conftest import load_script
from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl
from test_train import ENV, TINY, train

from sb3_mario import DDQN


@pytest.fixture(scope="module")
def screen_module():
    return load_script("screen")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("base")
    # 16-step episodes: each arm's 32 steps finish some (its level-start training flags, its --where table); a
    # learning rate that steps from 1e-3 to 2e-4 at 0.9 of the base's 64 steps, so at its stop it is 2e-4
    step = "learning_rate:step_1e-3_2e-4_0.9"
    result = train(tmp, "-n", 64, "--eval-freq", 0, "--save-replay-buffer", *TINY, "env_kwargs:{max_episode_steps: 16}", step)
    assert result.returncode == 0, result.stderr[-2000:]
    return tmp / "logs" / "ddqn" / f"{ENV}_1"


def write_screen(tmp_path, base, **arms):
    screen = {
        "base": str(base),
        "out": str(tmp_path / "screen"),
        "steps": 32,
        "save_freq": 16,
        "seed": 1,
        "held_out": {"seed": 7, "episodes": 1, "checkpoints": 2},
        "arms": arms,
    }
    path = tmp_path / "screen.yml"
    path.write_text(yaml.safe_dump(screen))
    return path


def test_arms_branch_from_the_same_state_go_on_after_a_stop_and_score_on_the_same_episodes(
    screen_module, base, tmp_path, run_main
):
    gamma = {"params": ["gamma:0.95", "learning_rate:5e-4"]}
    live = shutil.copytree(base, tmp_path / "live")  # the base run's folder, which may go on after the arms branch
    path = write_screen(tmp_path, live, control={}, control_b={"seed": 2}, gamma=gamma)
    assert run_main(screen_module.main, "run", path).returncode == 0
    out = tmp_path / "screen"
    frozen = out / "base"  # the arms branch from a copy of the base's state
    assert yaml.safe_load((frozen / "frozen_from.yml").read_text()) == {"base": str(live.resolve()), "steps": 64}
    assert (frozen / "checkpoints" / "replay_buffer.pkl").read_bytes() == (
        base / "checkpoints" / "replay_buffer.pkl"
    ).read_bytes()
    shutil.rmtree(live)  # the base run goes on or goes away: the screen reads its copy from here on
    for arm, gamma, rate in (("control", 0.99, 2e-4), ("control_b", 0.99, 2e-4), ("gamma", 0.95, 5e-4)):
        run = out / arm / "ddqn" / f"{ENV}_1"
        model = DDQN.load(run / f"{ENV}.zip", device="cpu")
        assert model.num_timesteps == 64 + 32 and model.gamma == gamma
        # the base's rate at its stop, not its schedule redrawn over the arm's total of 96 (1e-3 until step 86),
        # unless the arm sets its own
        assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(rate)
        log = (out / f"{arm}.log").read_text()
        # every arm starts from the base's buffer, which was saved at the base model's step
        assert f"loaded replay buffer {frozen / 'checkpoints' / 'replay_buffer.pkl'} (64 transitions)" in log
        assert "the replay buffer beside" not in log
    command = (out / "control_b" / "ddqn" / f"{ENV}_1" / "command.txt").read_text()
    assert "--seed 2" in command
    # --max-hours is cumulative: the base's training time plus the arm's own 10 h
    hours = DDQN.load(base / f"{ENV}.zip", device="cpu").training_seconds / 3600
    assert f"--max-hours {hours + 10:.4f}" in command
    # an arm whose folder is short of its steps goes on there (its own config.yml has its params and total)
    gamma_run = out / "gamma" / "ddqn" / f"{ENV}_1"
    for name in (f"{ENV}.zip", "checkpoints/model_96_steps.zip", "checkpoints/replay_buffer.pkl"):
        (gamma_run / name).unlink()  # as if stopped at its checkpoint at 64 + 16 (a kill before the buffer's save)
    again = run_main(screen_module.main, "run", path)
    assert again.returncode == 0 and "control: done (96 steps)" in again.stdout
    assert f"-i {gamma_run} --seed 1" in again.stdout
    resumed = DDQN.load(gamma_run / f"{ENV}.zip", device="cpu")
    assert resumed.num_timesteps == 96 and resumed.gamma == 0.95

    # --cached plays nothing: the table of what is scored so far (nothing yet), with the training columns
    cached = run_main(screen_module.main, "score", path, "--cached")
    assert cached.returncode == 0 and not list(out.glob("*/held_out.json"))
    assert "| control | 1 | learning_rate:0.0002 | not scored | | | | " in cached.stdout

    scored = run_main(screen_module.main, "score", path, "--workers", "1")
    assert scored.returncode == 0, scored.stderr
    rows = {line.split(" | ")[0][2:]: line for line in scored.stdout.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"control", "control_b", "gamma"}
    assert rows["control"].startswith("| control | 1 | learning_rate:0.0002 | ")
    assert rows["gamma"].startswith("| gamma | 1 | gamma:0.95 learning_rate:5e-4 | ")
    for arm in ("control", "control_b", "gamma"):
        cache = json.loads((out / arm / "held_out.json").read_text())
        assert sorted(cache) == ["80", "96"]  # the last 2 checkpoints after the base's 64 steps
        assert all(entry["n"] == 1 and entry["episodes_of"] == "seed 7, 1 episodes" for entry in cache.values())
        for entry in cache.values():  # each episode without a flag: where it ended, and whether it ran out of steps
            assert len(entry["ends"]) == entry["n"] - entry["flags"] and 0 <= entry["time_outs"] <= len(entry["ends"])
        flags = " ".join(str(cache[step]["flags"]) for step in ("80", "96"))
        assert f" | {flags} | " in rows[arm]
        assert re.search(r" \| \d+\.\d\d \(\d+\) \|$", rows[arm])  # its own training hours (env steps/s)
    assert "where training episodes end" in scored.stdout
    assert "Held-out episodes without a flag, by where they end" in scored.stdout
    assert re.search(r"^    control: (\d+-\d+ \d+(, )?)+; \d time-outs$", scored.stdout, re.M)


def test_a_base_without_its_buffer_is_one_line(screen_module, tmp_path, run_main):
    folder = tmp_path / "run"
    folder.mkdir()
    result = run_main(screen_module.main, "run", write_screen(tmp_path, folder, control={}))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "needs its final model and checkpoints/replay_buffer.pkl" in result.stderr


def test_a_base_that_went_on_after_its_stop_is_one_line(screen_module, base, tmp_path, run_main):
    # the run was resumed: its newest buffer is from a later step than its final model, which a branch would drop
    live = shutil.copytree(base, tmp_path / "live")
    buffer_path = live / "checkpoints" / "replay_buffer.pkl"
    buffer = load_from_pkl(buffer_path)
    buffer.saved_at_step = 80
    save_to_pkl(buffer_path, buffer)
    result = run_main(screen_module.main, "run", write_screen(tmp_path, live, control={}))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "its replay buffer was saved at step 80, its final model at 64" in result.stderr
    assert not (tmp_path / "screen" / "base").exists() and not (tmp_path / "screen" / "control").exists()
    # another screen file naming another base cannot reuse an out folder frozen from this one
    other = write_screen(tmp_path, base, control={})
    (tmp_path / "screen" / "base").mkdir(parents=True)
    (tmp_path / "screen" / "base" / "frozen_from.yml").write_text(yaml.safe_dump({"base": str(live), "steps": 64}))
    result = run_main(screen_module.main, "score", other, "--cached")
    assert result.returncode == 2 and f"is a copy of {live}, not of {base}" in result.stderr


def test_spread_sets_the_swing_beside_the_scatter_that_chance_gives(screen_module):
    # 20 flags of 80 episodes (p = 0.25): by chance alone a checkpoint's 20 episodes scatter with sd sqrt(20 x 0.25 x
    # 0.75) = 1.94; checkpoints at 0, 10, 5, 5 have sd sqrt((25 + 25 + 0 + 0) / 4) = 3.54: a swing of the policy
    assert screen_module.spread(np.array([0, 10, 5, 5]), 20) == "0-10, 3.5 (chance 1.9)"
    assert screen_module.spread(np.array([0, 0]), 20) == "0-0, 0.0 (chance 0.0)"


def test_ends_line_counts_where_episodes_without_a_flag_end(screen_module):
    rows = [
        {"ends": [3154, 3154, 1420], "time_outs": 2},  # two stands at the flagpole's base, a death in a pit
        {"ends": [1480, 2470, 3160], "time_outs": 1},
    ]
    assert screen_module.ends_line("control", rows) == "control: 3100-3200 3, 1400-1500 2, 2400-2500 1; 3 time-outs"
    assert screen_module.ends_line("control", [{"ends": [], "time_outs": 0}]) == "control: none; 0 time-outs"
    # a cache scored before the ends were kept: no line
    assert screen_module.ends_line("control", [{"flags": 3}]) == ""
