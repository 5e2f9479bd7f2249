"""Exceptions that sb3_mario raises for bad user input.

Command-line entry points print these as a single line and exit with code 2; Python callers can catch them by type.
"""

import sys


class Sb3MarioError(Exception):
    """Base class of every user-facing sb3_mario error."""


class EnvConfigError(Sb3MarioError, ValueError):
    """An environment id, action set or wrapper setting is invalid."""


class EnvStateError(Sb3MarioError, RuntimeError):
    """The environment was used out of order (stepped after the episode ended, or after close)."""


class ConfigError(Sb3MarioError, ValueError):
    """A hyperparameter or command-line value is invalid."""


class SaveError(Sb3MarioError, OSError):
    """A model, checkpoint or replay buffer could not be written (full disk, read-only folder, permissions)."""


def print_error(error: object) -> int:
    """Print ``error: <error>`` on stderr, one line, and return 2: how the command-line entry points fail."""
    print(f"error: {error}", file=sys.stderr)
    return 2
