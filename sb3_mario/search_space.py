"""The DDQN search space: raw Optuna params <-> hyperparameters ``train`` reads.

Trials store raw params (``one_minus_gamma``, ``one_minus_decay`` ...); :func:`params_to_hyperparams` turns any
trial's params, or a ``FixedTrial``'s, back into hyperparameters, so every trial can be re-run by number. The space
contains the tutorial's settings (gamma 0.9, lr 2.5e-4, batch 32, train_freq 3, target sync 10k, burn-in 10k,
buffer 100k, exponential decay 0.99999975 to 0.1, 1-step returns).
"""

from __future__ import annotations

from typing import Any

import optuna

GAMMA_RANGE = (0.8, 0.999)  # sampled as log(1 - gamma)


def sample_ddqn_params(trial: optuna.Trial) -> dict[str, Any]:
    """Suggest DDQN hyperparameters; returns them ready for ``train`` (see :func:`params_to_hyperparams`)."""
    trial.suggest_float("one_minus_gamma", 1 - GAMMA_RANGE[1], 1 - GAMMA_RANGE[0], log=True)
    trial.suggest_float("learning_rate", 1e-5, 2e-3, log=True)
    trial.suggest_categorical("batch_size", [16, 32, 64, 128])
    trial.suggest_categorical("train_freq", [1, 2, 3, 4, 8])
    trial.suggest_categorical("target_update_interval", [1000, 2500, 5000, 10000, 20000])
    trial.suggest_categorical("learning_starts", [1000, 5000, 10000, 20000])
    trial.suggest_categorical("buffer_size", [25000, 50000, 100000, 200000])
    trial.suggest_categorical("n_steps", [1, 2, 3, 5])
    schedule = trial.suggest_categorical("exploration_schedule", ["exponential", "linear"])
    if schedule == "exponential":
        trial.suggest_float("one_minus_decay", 1e-7, 1e-4, log=True)
    else:
        trial.suggest_float("exploration_fraction", 0.02, 0.5)
    trial.suggest_float("exploration_final_eps", 0.01, 0.2)
    return params_to_hyperparams(trial.params)


def params_to_hyperparams(params: dict[str, Any]) -> dict[str, Any]:
    """Raw trial params -> DDQN hyperparameters (``gamma = 1 - one_minus_gamma`` ...)."""
    hp: dict[str, Any] = {}
    for key, value in params.items():
        if key == "one_minus_gamma":
            hp["gamma"] = 1.0 - value
        elif key == "one_minus_decay":
            hp["exploration_decay"] = 1.0 - value
        else:
            hp[key] = value
    return hp


def tutorial_params() -> dict[str, Any]:
    """The tutorial's settings as raw params of this space (enqueue them to start a study from the tutorial)."""
    return {
        "one_minus_gamma": 0.1,
        "learning_rate": 2.5e-4,
        "batch_size": 32,
        "train_freq": 3,
        "target_update_interval": 10000,
        "learning_starts": 10000,
        "buffer_size": 100000,
        "n_steps": 1,
        "exploration_schedule": "exponential",
        "one_minus_decay": 2.5e-7,
        "exploration_final_eps": 0.1,
    }
