"""A fresh install gets every file the package reads at run time (built as a wheel, as pip would install it)."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_holds_the_package_data(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("sb3_mario-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "sb3_mario").rglob("*") if p.suffix in {".yml", ".zip"}}
    assert shipped and shipped <= names
    assert {"sb3_mario/py.typed", "sb3_mario/pretrained/__init__.py", "sb3_mario/ddqn/overlap.py"} <= names
