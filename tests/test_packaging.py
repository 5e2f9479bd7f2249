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


def test_top_level_hyperparams_is_the_packaged_folder():
    # the design card's top-level hyperparams/ and the copy the package installs are one folder: a link, never a
    # copy that goes stale under `pip install -e`
    top = ROOT / "hyperparams"
    assert top.is_symlink() and top.resolve() == (ROOT / "sb3_mario" / "hyperparams").resolve()
    assert sorted(p.name for p in top.glob("*.yml")) == [
        "ddqn.yml",
        "ddqn_frontier.yml",
        "ddqn_hop.yml",
        "ddqn_tutorial.yml",
        "dqn.yml",
    ]
