"""Shipped models: ``load_pretrained`` and ``enjoy --pretrained``, and their errors."""

import os
import subprocess
import sys

import imageio.v2 as imageio
import pytest

import sb3_mario
from sb3_mario.errors import Sb3MarioError
from sb3_mario.evaluation import evaluate_protocol
from sb3_mario.experiment import HELD_OUT_SEED
from sb3_mario.pretrained import pretrained_path

ENV = "SuperMarioBros-1-1-v0"
CLI_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # one torch thread: the network plays one frame at a time


def test_shipped_model_is_listed_small_and_records_its_env():
    assert ENV in sb3_mario.available_pretrained()
    assert pretrained_path(ENV).stat().st_size <= 10 * 2**20
    assert sb3_mario.load_pretrained(ENV).mario_env["env_id"] == ENV


@pytest.mark.slow  # 20 protocol episodes (~1.5 min on 2 cores); test_enjoy_pretrained_records_a_clear plays one
def test_shipped_model_clears_1_1_under_the_protocol():
    assert ENV in sb3_mario.available_pretrained()
    assert pretrained_path(ENV).stat().st_size <= 10 * 2**20
    model = sb3_mario.load_pretrained(ENV)
    assert model.mario_env["env_id"] == ENV
    # sticky actions 0.25, 0-30 button-less no-ops, on held-out seeds: no run picks models on seeds >= 10**9
    result = evaluate_protocol(model, model.mario_env, n_episodes=20, seed=HELD_OUT_SEED + 2026, n_workers=2)
    assert [e.seed for e in result.episodes] == list(range(HELD_OUT_SEED + 2026, HELD_OUT_SEED + 2046))
    assert len({e.noops for e in result.episodes}) > 5  # the starts really differ
    assert result.flags >= 18, [(e.noops, e.max_x, e.flag) for e in result.episodes]


def test_enjoy_pretrained_records_a_clear(tmp_path):
    gif = tmp_path / "mario.gif"
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "sb3_mario.enjoy",
            "--pretrained",
            ENV,
            "--record",
            str(gif),
            "--protocol",
            "--seed",
            "1000000007",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=CLI_ENV,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "1/1 flags" in ok.stdout
    frames = imageio.mimread(gif, memtest=False)
    assert len(frames) > 100 and frames[0].shape[:2] == (240, 256)


def test_unknown_id_lists_the_available_ones():
    listed = ", ".join(sb3_mario.available_pretrained()) or "none in this install"
    with pytest.raises(Sb3MarioError) as err:
        sb3_mario.load_pretrained("SuperMarioBros-8-4-v0")
    assert str(err.value) == f"no pretrained model for 'SuperMarioBros-8-4-v0'; available: {listed}"


def test_enjoy_pretrained_unknown_id_is_one_line():
    bad = subprocess.run(
        [sys.executable, "-m", "sb3_mario.enjoy", "--pretrained", "nope"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "available:" in bad.stderr
