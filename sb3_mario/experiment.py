"""The experiment builder ``train`` and ``tune`` share: the training envs, the model and the protocol evaluation
of a run, from validated hyperparameters (:func:`sb3_mario.config.load_hyperparams`).

Whatever one command accepts, the other builds the same way: an algorithm, env setting or evaluation rule is added
here once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch as th
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_mario.callbacks import ProtocolEvalCallback
from sb3_mario.config import build_kwargs, check_augmentation, model_class
from sb3_mario.envs import make_mario_vec_env
from sb3_mario.envs.factory import mario_env_of
from sb3_mario.errors import ConfigError
from sb3_mario.portable import legacy_kwargs
from sb3_mario.runs import read_model_data

# evaluation seeds of run seed s start at EVAL_SEED_BASE + 1e6 * s; held-out checks use seeds >= HELD_OUT_SEED
EVAL_SEED_BASE = 10_000_000
HELD_OUT_SEED = 1_000_000_000


def check_device(device: str) -> None:
    """Raise :class:`ConfigError` (one line) for a ``--device`` that is not ``auto``, ``cpu`` or ``cuda[:N]``, or a
    CUDA device this machine lacks (SB3 would train on the CPU instead, saying nothing)."""
    if device in ("auto", "cpu"):
        return
    if not re.fullmatch(r"cuda(:\d+)?", device):
        raise ConfigError(f"--device: expected auto, cpu or cuda[:N], got {device!r}")
    found = th.cuda.device_count() if th.cuda.is_available() else 0
    index = int(device.partition(":")[2] or 0)
    if index >= found:
        build = f"built with CUDA {th.version.cuda}" if th.version.cuda else "a CPU-only build"
        raise ConfigError(f"--device {device}: this machine has {found} CUDA device(s) (torch {th.__version__}, {build})")


def make_env(
    env_id: str, hyperparams: dict[str, Any], seed: int, vec_env: str = "subproc", monitor_dir: str | Path | None = None
) -> VecEnv:
    """The training envs: ``n_envs`` Mario envs with the run's ``env_kwargs``, env ``i`` seeded ``seed + i``."""
    return make_mario_vec_env(
        env_id,
        n_envs=hyperparams.get("n_envs", 1),
        vec_env=vec_env,
        seed=seed,
        monitor_dir=None if monitor_dir is None else str(monitor_dir),
        **hyperparams.get("env_kwargs", {}),
    )


def make_model(
    algo: str,
    hyperparams: dict[str, Any],
    env: VecEnv,
    seed: int,
    device: str = "auto",
    verbose: int = 0,
    tensorboard_log: str | None = None,
) -> OffPolicyAlgorithm:
    """A new model of ``algo`` on ``env``, which records the env's settings (``model.mario_env``) to save them: DDQN
    does so itself, SB3's DQN cannot, so they are set here for both."""
    kwargs = build_kwargs(algo, hyperparams)
    policy = hyperparams.get("policy", "CnnPolicy")
    model = model_class(algo, kwargs)(
        policy, env, seed=seed, device=device, verbose=verbose, tensorboard_log=tensorboard_log, **kwargs
    )
    model.mario_env = mario_env_of(env)  # type: ignore[attr-defined]
    model.algo_name = algo  # type: ignore[attr-defined]  # saved: the class to load the zip with
    return model


def resume_model(
    algo: str,
    path: str | Path,
    changes: dict[str, Any],
    env: VecEnv | None = None,
    seed: int | None = None,
    **load_kwargs: Any,
) -> OffPolicyAlgorithm:
    """A saved model of ``algo`` loaded to go on training, with ``changes`` (validated hyperparameters whose resume
    rule is ``"model"``) acting where they live: a key of a mapping argument (``ez_greedy_mu`` in
    ``exploration_kwargs`` ...) changes that key of the saved mapping; ``advantage_learning`` picks the class.

    :param seed: the resumed run's seed, as rl-zoo passes it to ``load``: SB3's ``load`` seeds torch, numpy, the
        action space and ``env`` with the model's ``seed``, which would otherwise be the saved run's (every branch
        of one zip would then draw the same sticky actions, no-op starts and exploration, whatever ``--seed`` says)
    :param load_kwargs: passed to ``load`` (``device``, ``tensorboard_log`` ...)
    """
    if seed is not None:
        load_kwargs["seed"] = seed
    saved = {**read_model_data(path), **legacy_kwargs(path)}
    kwargs = build_kwargs(algo, changes)
    for key, value in kwargs.items():
        if isinstance(value, dict) and isinstance(saved.get(key), dict):
            kwargs[key] = {**saved[key], **value}
    check_augmentation(saved.get("replay_buffer_class"), kwargs.get("replay_buffer_kwargs", {}))
    if kwargs:
        print("resuming with " + ", ".join(f"{k}={v}" for k, v in kwargs.items()))
    model = model_class(algo, {**saved, **changes}).load(path, env=env, **load_kwargs, **kwargs)
    if env is not None:
        model.mario_env = mario_env_of(env)  # type: ignore[attr-defined]  # the env it resumes on (-params env_kwargs)
    return model


def evaluation_seed(seed: int) -> int:
    """The first evaluation seed of a run seeded ``seed`` (never one of the held-out seeds)."""
    return EVAL_SEED_BASE + 1_000_000 * seed


def make_evaluation(
    model: OffPolicyAlgorithm,
    eval_freq: int,
    n_eval_episodes: int,
    seed: int,
    callback_class: type[ProtocolEvalCallback] = ProtocolEvalCallback,
    **kwargs: Any,
) -> ProtocolEvalCallback:
    """The protocol evaluation of a run, on the model's own env settings, every ``eval_freq`` env transitions.

    :param kwargs: passed to ``callback_class`` (confirmation, stop rule, best model, log file ...)
    """
    settings = getattr(model, "mario_env", None)
    assert settings, "make_evaluation needs a model built on Mario envs (make_model)"
    return callback_class(
        settings,
        eval_freq=max(eval_freq // model.n_envs, 1),
        n_eval_episodes=n_eval_episodes,
        seed=evaluation_seed(seed),
        **kwargs,
    )


__all__ = ["HELD_OUT_SEED", "check_device", "evaluation_seed", "make_env", "make_evaluation", "make_model", "resume_model"]
