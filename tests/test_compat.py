"""The Python >= 3.13 backend (gym-super-mario-bros 8.x on nes-py 9, gymnasium API) in a light venv of its own.

Slow (creates a venv and installs from PyPI): `pytest -m slow tests/test_compat.py`. Skipped when no Python 3.13 is
found (set SB3_MARIO_PY313 to its path).
"""

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = Path(__file__).parent / "compat" / "check_gymnasium_backend.py"


def find_python313():
    candidates = [
        os.environ.get("SB3_MARIO_PY313"),
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[3-9]*/bin/python"))),
        shutil.which("python3.13"),
    ]
    check = "import sys; assert sys.version_info >= (3, 13)"
    for candidate in candidates:  # a pyenv shim can exist and still not run: ask each candidate
        if candidate and subprocess.run([candidate, "-c", check], capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.mark.slow
def test_gymnasium_backend_on_python313(tmp_path):
    python = find_python313()
    if python is None:
        pytest.skip("no Python >= 3.13 found (set SB3_MARIO_PY313)")
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run(
        [*pip, "gym-super-mario-bros>=8,<9", "gymnasium>=1.0", "opencv-python-headless", "numpy"],
        check=True,
        capture_output=True,
    )
    result = subprocess.run([str(venv / "bin" / "python"), str(CHECK)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok 3.1")


def test_check_script_on_this_python():
    """The same script on the interpreter running the suite (the legacy backend on Python < 3.13)."""
    result = subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
