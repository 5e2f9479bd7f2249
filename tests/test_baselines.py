"""scripts/baselines.py: the constant policies and hop cycles a result is scored beside, on the real emulator."""

from pathlib import Path

import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def baselines():
    return load_script("baselines")


def test_hop_cycle_jumps_k_minus_1_steps_then_runs_and_restarts_each_episode(baselines):
    cycle = baselines.HopCycle(3, jump=1, run=0)
    assert [int(cycle.predict(None)[0]) for _ in range(7)] == [1, 1, 0, 1, 1, 0, 1]
    cycle.reset()
    assert int(cycle.predict(None)[0]) == 1


def test_table_scores_every_constant_with_and_without_repeat_jump(baselines, run_main):
    # seed 7: [right, A] hops to the flag with repeat_jump and dies at the first Goomba without (test_evaluation.py)
    result = run_main(baselines.main, "--episodes", "1", "--seed", "7")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| always")]
    assert [r.split(" | ")[:3] for r in rows] == [
        ["| always [right]", "off", "0/1"],
        ["| always [right, A]", "off", "0/1"],
        ["| always [right]", "on", "0/1"],
        ["| always [right, A]", "on", "1/1"],
    ]
    assert int(rows[1].split(" | ")[3].rstrip(" |")) < 400 and int(rows[3].split(" | ")[3].rstrip(" |")) > 3100


def test_bad_input_is_one_line(baselines, run_main):
    for argv, message in (
        (["--env-kwargs", "[1, 2]"], "--env-kwargs must be a YAML mapping"),
        (["--env-kwargs", "{a: [1"], "--env-kwargs must be a YAML mapping"),
        (["--hop-cycles", "2,x"], "--hop-cycles: comma-separated integers"),
        (["--env", "SuperMarioBros-1-9-v0"], "error: "),
        (["--actions", "jump_only"], "error: "),
    ):
        result = run_main(baselines.main, *argv)
        last = result.stderr.strip().splitlines()[-1]  # argparse prints its usage lines first
        assert result.returncode == 2 and message in last and "Traceback" not in result.stderr, argv


def test_models_are_scored_first_then_the_baselines_in_their_settings_on_the_same_episodes(baselines, run_main):
    # the shipped hop model (repeat_jump on): only its own repeat_jump's baselines; each row with its Wilson interval,
    # greedy shares and the episode without sticky actions or no-ops
    shipped = Path(baselines.__file__).resolve().parents[1] / "sb3_mario" / "pretrained" / "SuperMarioBros-1-1-v0.zip"
    result = run_main(baselines.main, str(shipped), "--episodes", "1", "--seed", "7", "--workers", "1")
    assert result.returncode == 0, result.stderr
    rows = [line.split(" | ") for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r[0] for r in rows] == [f"| {shipped}", "| always [right]", "| always [right, A]"]
    assert all(r[1] == "on" for r in rows)
    assert rows[0][2:] == ["1/1", "3161", "21%-100%", "[right] 0%, [right, A] 100%", "flag, x 3161 |"]
    assert rows[1][2] == "0/1" and rows[1][4] == "0%-79%" and rows[1][5] == "[right] 100%, [right, A] 0%"
    assert rows[2][2:5] == ["1/1", "3161", "21%-100%"]
