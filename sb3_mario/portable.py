"""Zips that load on both install paths: numpy 2 (Python >= 3.13) and numpy 1 (the legacy backend on Python < 3.13).

SB3 cloudpickles a model's spaces, last observation and episode buffers into its zip. Pickles made under numpy 2 name
``numpy._core`` modules, which numpy 1 lacks, and pickle random generators in a form numpy 1 cannot rebuild. numpy 2
reads numpy 1's pickles as they are; for the other direction, :func:`numpy2_pickles` maps ``numpy._core`` onto numpy
1's ``numpy.core`` while a zip is read, and :func:`portable_custom_objects` rebuilds the observation and action spaces
from the env settings saved in the zip (``mario_env``) instead of unpickling them. SB3 has no hook for either (its
``custom_objects`` replace whole entries, and it catches only some unpickling errors).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

NUMPY1 = int(np.__version__.split(".")[0]) < 2
_CORE_MODULES = ("", ".multiarray", ".numeric", "._multiarray_umath", ".umath", ".fromnumeric", "._dtype")


@contextlib.contextmanager
def numpy2_pickles() -> Iterator[None]:
    """While open, numpy 2's pickles of arrays, scalars and dtypes load under numpy 1; under numpy 2, numpy 1's load
    without the ``numpy.core`` deprecation warning (they name its old module path; nothing is wrong with them)."""
    if not NUMPY1:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"numpy\.core.* is deprecated", category=DeprecationWarning)
            yield
        return
    added = []
    for suffix in _CORE_MODULES:
        name = f"numpy._core{suffix}"
        if name not in sys.modules:
            with contextlib.suppress(ImportError):
                sys.modules[name] = importlib.import_module(f"numpy.core{suffix}")
                added.append(name)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


def portable_custom_objects(path: str | Path, custom_objects: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``custom_objects`` for SB3's ``load`` of the zip ``path``: under numpy 1, the spaces of the Mario env saved in
    the zip (numpy 2 pickles a space's random generator in a form numpy 1 cannot read); otherwise as given."""
    if not NUMPY1:
        return custom_objects
    from stable_baselines3.common.save_util import load_from_zip_file

    from sb3_mario.envs.factory import make_mario_env, play_env_kwargs  # the env's owner builds its spaces

    skip = {"observation_space": None, "action_space": None}
    with numpy2_pickles():
        data, _, _ = load_from_zip_file(path, load_data=True, custom_objects=skip, device="cpu")
    settings = (data or {}).get("mario_env")
    if not isinstance(settings, dict):
        return custom_objects
    env = make_mario_env(**play_env_kwargs(settings))
    try:
        spaces = {"observation_space": env.observation_space, "action_space": env.action_space}
    finally:
        env.close()
    return {**spaces, **(custom_objects or {})}


__all__ = ["numpy2_pickles", "portable_custom_objects"]
