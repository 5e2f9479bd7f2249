"""Keep legacy ``gym``'s import-time notice off the user's terminal.

``gym`` 0.26 prints a 4-line "unmaintained" notice to stderr on first import, and SB3 and nes-py both import it when
it is installed (the gym-super-mario-bros 7.4.0 backend needs it). ``sb3_mario/__init__.py`` calls this before
anything imports SB3, so every sb3_mario command and ``import sb3_mario`` stay silent.
"""

import contextlib
import importlib
import io
import sys


def silence_gym_notice() -> None:
    """Import legacy ``gym`` with stderr captured; a no-op where it is absent or already imported."""
    if "gym" in sys.modules:
        return
    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(ImportError):
        importlib.import_module("gym")
