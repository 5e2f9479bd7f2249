"""Trained models shipped with sb3_mario: ``load_pretrained("SuperMarioBros-1-1-v0")``.

Each is an ordinary SB3 zip, ``<env id>.zip`` in this folder, trained by ``python -m sb3_mario.train`` (the README
gives the command, seed and time). The env settings it was trained with travel in the zip (``model.mario_env``).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from sb3_mario.ddqn import DDQN
from sb3_mario.envs.factory import play_env_kwargs
from sb3_mario.errors import Sb3MarioError


def _folder() -> Path:
    return Path(str(importlib.resources.files("sb3_mario.pretrained")))


def available_pretrained() -> list[str]:
    """Env ids with a shipped model."""
    return sorted(path.stem for path in _folder().glob("*.zip"))


def pretrained_path(env_id: str) -> Path:
    """The shipped zip for ``env_id``; an unknown id raises a :class:`~sb3_mario.errors.Sb3MarioError` listing the
    available ones."""
    path = _folder() / f"{env_id}.zip"
    if not isinstance(env_id, str) or not path.is_file():
        names = ", ".join(available_pretrained()) or "none in this install"
        raise Sb3MarioError(f"no pretrained model for {env_id!r}; available: {names}")
    return path


def load_pretrained(env_id: str = "SuperMarioBros-1-1-v0", device: str = "cpu", **kwargs: Any) -> DDQN:
    """Load the shipped model for ``env_id`` (a :class:`~sb3_mario.DDQN`; ``make_mario_env(**model.mario_env)``
    builds its env, which starts every episode at the level's start even if the model trained with frontier starts).

    :param env_id: a Super Mario Bros env id, see :func:`available_pretrained`
    :param device: torch device
    :param kwargs: passed to ``DDQN.load``
    """
    model = DDQN.load(pretrained_path(env_id), device=device, **kwargs)
    if model.mario_env is not None:
        model.mario_env = play_env_kwargs(model.mario_env)
    return model


__all__ = ["available_pretrained", "load_pretrained", "pretrained_path"]
