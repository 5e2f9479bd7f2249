"""gymnasium registration: ``gymnasium.make("sb3_mario/SuperMarioBros-1-1-v0")`` gives the preprocessed env."""

from __future__ import annotations

import gymnasium

from sb3_mario.envs.backend import backend_env_ids

NAMESPACE = "sb3_mario"


def register_mario_envs() -> list[str]:
    """Register ``sb3_mario/<id>`` for every Super Mario Bros id of the backend; return the new ids.

    Keyword arguments of :func:`sb3_mario.make_mario_env` pass through ``gymnasium.make``, e.g.
    ``gymnasium.make("sb3_mario/SuperMarioBros-1-1-v0", actions="simple", frame_skip=2)``.
    """
    ids = []
    for env_id in backend_env_ids():
        full_id = f"{NAMESPACE}/{env_id}"
        if full_id not in gymnasium.envs.registry:
            gymnasium.register(
                id=full_id,
                entry_point="sb3_mario.envs.factory:make_mario_env",
                kwargs={"env_id": env_id},
                # The factory applies its own wrappers; gymnasium's passive checker would add one more per step.
                disable_env_checker=True,
            )
            # gym-super-mario-bros' "-v0..-v3" name ROM modes, not versions of one env: keep the whole backend id
            # as the name so gymnasium.make does not warn that "-v0" is out of date because "-v3" exists.
            spec = gymnasium.envs.registry[full_id]
            spec.name, spec.version = env_id, None
        ids.append(full_id)
    return ids
