import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def load_script(name):
    """``scripts/<name>.py`` as a module: the lab-book tools are scripts, not part of the package."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture
def run_main(capfd, monkeypatch):
    """``run_main(main, *argv)``: a CLI module's ``main(argv)`` called in this process, as ``python -m`` calls it,
    without the ~3 s of imports of a new process; a ``CompletedProcess`` with its exit status and what it printed.

    Warnings are printed to stderr as a fresh interpreter prints them (pytest would otherwise collect them), so a
    one-line check sees them. What only a new process adds (imports print nothing, ``sys.exit(main())``) is the same
    for every input: the tests that run each CLI as a subprocess check it."""

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    def run(main, *argv):
        args = [str(a) for a in argv]
        monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # train's main sets the CLI's own
        capfd.readouterr()
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)  # a fresh interpreter's defaults
            warnings.showwarning = show
            try:
                code = main(args)
            except SystemExit as exc:  # argparse's errors
                code = exc.code
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run
