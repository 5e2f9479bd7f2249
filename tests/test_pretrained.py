"""Shipped models: ``load_pretrained`` and ``enjoy --pretrained``, and their errors."""

import subprocess
import sys

import imageio.v2 as imageio
import pytest

import sb3_mario
from sb3_mario.enjoy import play
from sb3_mario.errors import Sb3MarioError
from sb3_mario.pretrained import pretrained_path

ENV = "SuperMarioBros-1-1-v0"


def test_shipped_model_clears_1_1_from_noop_starts():
    assert ENV in sb3_mario.available_pretrained()
    assert pretrained_path(ENV).stat().st_size <= 10 * 2**20
    model = sb3_mario.load_pretrained(ENV)
    assert model.mario_env["env_id"] == ENV
    # greedy, after 0-30 seeded no-ops: the emulator is deterministic, the starts are not
    stats, _ = play(model, model.mario_env, episodes=10, deterministic=True, noop_max=30, seed=2026)
    assert len({s["noops"] for s in stats}) > 5  # the starts really differ
    flags = sum(s["flag"] for s in stats)
    assert flags >= 8, [(s["noops"], s["x_pos"], s["flag"]) for s in stats]


def test_enjoy_pretrained_records_a_clear(tmp_path):
    gif = tmp_path / "mario.gif"
    ok = subprocess.run(
        [sys.executable, "-m", "sb3_mario.enjoy", "--pretrained", ENV, "--record", str(gif), "--noop-max", "30"],
        capture_output=True,
        text=True,
        timeout=300,
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
