"""Shipped models: ``load_pretrained`` and ``enjoy --pretrained``, and their errors."""

import subprocess
import sys

import pytest

import sb3_mario
from sb3_mario.errors import Sb3MarioError


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
