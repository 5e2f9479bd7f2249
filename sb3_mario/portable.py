"""Zips that load on both install paths (numpy 2 on Python >= 3.13, numpy 1 on the legacy backend) and from earlier
versions of sb3_mario: :class:`PortableLoad`, the ``load`` of :class:`~sb3_mario.DDQN`.

SB3 cloudpickles a model's spaces, last observation and episode buffers into its zip. Pickles made under numpy 2 name
``numpy._core`` modules, which numpy 1 lacks, and pickle random generators in a form numpy 1 cannot rebuild. numpy 2
reads numpy 1's pickles as they are; for the other direction, :func:`numpy2_pickles` maps ``numpy._core`` onto numpy
1's ``numpy.core`` while a zip is read, and :func:`portable_custom_objects` rebuilds the observation and action spaces
from the env settings saved in the zip (``mario_env``) instead of unpickling them. SB3 has no hook for either (its
``custom_objects`` replace whole entries, and it catches only some unpickling errors).

Zips saved before DDQN's levers moved to their extension points (2026-12-05) kept them as attributes;
:func:`legacy_kwargs` hands them to ``load`` where they live now (``exploration_kwargs``, ``learner_kwargs``, the
replay buffer's kwargs). It lives here, not in ``convert.py``, which builds DDQNs and would close an import cycle.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import sys
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import GymEnv

from sb3_mario.params import NESTED_KEYS

SelfLoad = TypeVar("SelfLoad", bound="PortableLoad")
# attributes of DDQN zips from before 2026-12-05 -> (load kwarg, key): the YAML keys' places, and the schedule's name
LEGACY_ATTRIBUTES = {
    **{key: place for key, place in NESTED_KEYS.items() if key != "exploration_schedule"},  # SB3's own, in old zips
    "exploration_schedule_name": NESTED_KEYS["exploration_schedule"],
}

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


def legacy_kwargs(path: str | Path) -> dict[str, Any]:
    """``load`` kwargs that give a zip saved before 2026-12-05 its settings in today's places (nothing for newer zips).

    :param path: the zip
    :return: ``exploration_kwargs``, ``learner_kwargs``, ``replay_buffer_kwargs`` and ``exploration_budget``, as the
        zip's old attributes say
    """
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return {}  # not an SB3 zip: SB3's load says so
    if "exploration_kwargs" in data or not any(key in data for key in LEGACY_ATTRIBUTES):
        return {}
    kwargs: dict[str, Any] = {"exploration_kwargs": {}, "learner_kwargs": {}}
    saved_buffer_kwargs = data.get("replay_buffer_kwargs")
    if isinstance(saved_buffer_kwargs, dict) and ":serialized:" not in saved_buffer_kwargs:  # plain JSON
        kwargs["replay_buffer_kwargs"] = dict(saved_buffer_kwargs)
    for attribute, (mapping, key) in LEGACY_ATTRIBUTES.items():
        if attribute in data and not isinstance(data[attribute], dict):
            if mapping == "replay_buffer_kwargs" and (not data[attribute] or "replay_buffer_kwargs" not in kwargs):
                continue  # no augmentation (SB3's own buffers take no such keyword), or the saved kwargs unreadable
            kwargs.setdefault(mapping, {})[key] = data[attribute]
    horizon, fraction = data.get("exploration_horizon"), data.get("exploration_fraction")
    if data.get("exploration_budget") is None and isinstance(horizon, int) and isinstance(fraction, float):
        kwargs["exploration_budget"] = round(horizon / fraction) if fraction else 0  # zips from before the budget
    return kwargs


class PortableLoad(BaseAlgorithm):
    """SB3's ``load`` for zips of both install paths and of earlier versions: list it before the SB3 class
    (``class DDQN(LearnerEngine, PortableLoad, DQN)``). SB3 writes ``load``'s keyword arguments into the instance
    dict; an attribute that a class stores elsewhere (a property) names its storage in :attr:`load_aliases`."""

    load_aliases: ClassVar[dict[str, str]] = {}

    @classmethod
    def load(
        cls: type[SelfLoad],
        path: str | Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfLoad:
        kwargs = {cls.load_aliases.get(key, key): value for key, value in kwargs.items()}
        with numpy2_pickles():
            if isinstance(path, (str, Path)):
                custom_objects = portable_custom_objects(path, custom_objects)
                kwargs = {**legacy_kwargs(path), **kwargs}
            return super().load(path, env, device, custom_objects, print_system_info, force_reset, **kwargs)


__all__ = ["LEGACY_ATTRIBUTES", "PortableLoad", "legacy_kwargs", "numpy2_pickles", "portable_custom_objects"]
