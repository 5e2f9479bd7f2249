"""plot --where: stretch pass rates of training episodes, hand-counted on a real Monitor CSV in a run folder; plot
--milestones: a run's evaluation milestones from a real evaluations.npz."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from sb3_mario.plot import main as plot_main
from sb3_mario.plot import milestones_row, read_monitor, stretch_pass_rates, where_table

# (furthest x, flag, start_x): three from the level's start (x 40), two frontier restarts (start_x >= 128)
EPISODES = [(150, False, 40), (250, False, 40), (3161, True, 40), (250, False, 200), (320, False, 150)]


def write_run(folder, episodes, length=10):
    folder.mkdir()
    rows = [f"1.0,{length},{i + 1}.0,{x},{flag},{start}" for i, (x, flag, start) in enumerate(episodes)]
    header = ['#{"t_start": 0.0, "env_id": "SuperMarioBros-1-1-v0"}', "r,l,t,max_x_pos,flag_get,start_x"]
    (folder / "0.monitor.csv").write_text("\n".join(header + rows) + "\n")
    return folder


def test_stretch_pass_rates_by_hand(tmp_path):
    episodes = read_monitor(write_run(tmp_path / "run", EPISODES))
    starts, at_risk, passed = stretch_pass_rates(episodes, bin_px=100)
    # stretches up to the one holding the furthest x without a flag (320)
    assert starts.tolist() == [0, 100, 200, 300]
    # 0-100: the three level starts, all pass; 100-200: the same three, the one that died at 150 does not pass;
    # 200-300: both restarts join (they began at or before 200), those at 250 do not pass; 300-400: the flag and
    # the restart that reached 320, which does not pass
    assert at_risk.tolist() == [3, 3, 4, 2]
    assert passed.tolist() == [3, 2, 2, 1]


def test_where_table_by_hand(tmp_path):
    # four copies of the five in the first 200 steps, then one level start that dies at x 500
    episodes = EPISODES * 4 + [(500, False, 40)]
    table = where_table(write_run(tmp_path / "run", episodes), step_window=200, bin_px=100).splitlines()
    assert table[1].startswith("steps | episodes (restarts) | level-start flags | flag estimate")
    # rates 1, 2/3, 1/2, 1/2: the estimate is 1/6; the hardest stretches with >= 10 at risk, lowest rate first
    assert table[2] == "0-200 | 20 (8) | 4/12 | 16.67% | 200-300 0.50 (16), 100-200 0.67 (12), 0-100 1.00 (12)"
    # the episode that died at 500 fails its last stretch: the estimate is 0; no stretch has 10 at risk
    assert table[3] == "200-400 | 1 (0) | 0/1 | 0.00% | -"
    assert len(table) == 4


def test_where_counts_no_flag_and_all_flags(tmp_path):
    flags = read_monitor(write_run(tmp_path / "flags", [(3161, True, 40), (3165, True, 300)]))
    starts, at_risk, passed = stretch_pass_rates(flags)
    assert starts.tolist() == [0] and at_risk.tolist() == [1] and passed.tolist() == [1]
    deaths = read_monitor(write_run(tmp_path / "deaths", [(296, False, 40)] * 3))
    starts, at_risk, passed = stretch_pass_rates(deaths, bin_px=50)
    assert at_risk.tolist() == [3] * 6 and passed.tolist() == [3] * 5 + [0]  # all die in 250-300


def test_where_cli(tmp_path, run_main):
    run = write_run(tmp_path / "run", EPISODES * 4)
    result = run_main(plot_main, run, "--where", "--step-window", "1000")
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.splitlines()[2]
        == "0-1k | 20 (8) | 4/12 | 16.67% | 200-300 0.50 (16), 100-200 0.67 (12), 0-100 1.00 (12)"
    )
    assert not (tmp_path / "learning_curves.png").exists() and not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("option", ["--bin", "--step-window"])
def test_where_bad_input(tmp_path, run_main, option):
    run = write_run(tmp_path / "run", EPISODES)
    result = run_main(plot_main, run, "--where", option, "0")
    assert result.returncode == 2 and "must be >= 1" in result.stderr and result.stderr.count("\n") == 1


def write_evaluations(folder, stop_flag_rate=0.5):
    """A run's evaluations.npz as ProtocolEvalCallback writes it: four evaluations of 5 quick episodes; a confirmation
    (50 episodes) after 4/5 (40 %) and after 3/5 (56 %, the stop rule's 50 % reached); cumulative seconds."""
    folder.mkdir()
    successes = np.array([[0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], dtype=bool)
    np.savez(
        folder / "evaluations.npz",
        timesteps=np.array([10_000, 20_000, 30_000, 40_000]),
        flag_rate=np.array([0.0, 0.2, 24 / 55, 31 / 55]),
        episodes=np.array([5, 5, 55, 55]),
        confirm_flag_rate=np.array([np.nan, np.nan, 0.4, 0.56]),
        train_seconds=np.array([3600.0, 7200.0, 10_800.0, 14_400.0]),
        eval_seconds=np.array([36.0, 72.0, 360.0, 720.0]),
        successes=successes,
    )
    if stop_flag_rate is not None:
        (folder / "config.yml").write_text(yaml.safe_dump({"SuperMarioBros-1-1-v0": {"stop_flag_rate": stop_flag_rate}}))
    return folder


def test_milestones_by_hand(tmp_path, run_main):
    run = write_evaluations(tmp_path / "run")
    result = run_main(plot_main, run, "--milestones")
    assert result.returncode == 0, result.stderr
    header, _, row = result.stdout.splitlines()
    assert header.startswith("| run | evaluations | first flag | first at >= 80% | first confirmation | stop rule reached")
    third = "30,000 (3.00 h, 0.10 of it evaluating): 4/5, confirmed 40%"
    fourth = "40,000 (4.00 h, 0.20 of it evaluating): 3/5, confirmed 56%"
    first = "20,000 (2.00 h, 0.02 of it evaluating): 1/5"
    assert row == f"| {run} | 4 | {first} | {third} | {third} | {fourth} | {third} | {fourth} |"
    # a run without a stop rule; a lower --at
    other = write_evaluations(tmp_path / "other", stop_flag_rate=None)
    cells = milestones_row(other, at=0.6)
    assert cells[3] == third and cells[5] == "no stop rule"


@pytest.mark.parametrize("case", ["no evaluations", "bad --at"])
def test_milestones_bad_input(tmp_path, run_main, case):
    run = write_run(tmp_path / "run", EPISODES) if case == "no evaluations" else write_evaluations(tmp_path / "run")
    result = run_main(plot_main, run, "--milestones", *(["--at", "1.5"] if case == "bad --at" else []))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert ("no evaluations.npz" if case == "no evaluations" else "--at: a flag rate in (0, 1]") in result.stderr
