"""The DDQN search space: raw Optuna params <-> hyperparameters ``train`` reads.

Trials store raw params (``one_minus_gamma``, ``one_minus_decay`` ...); :func:`params_to_hyperparams` turns any
trial's params, or a ``FixedTrial``'s, back into hyperparameters, so every trial can be re-run by number. The space
contains the tutorial's settings (gamma 0.9, lr 2.5e-4, batch 32, train_freq 3, target sync 10k, burn-in 10k,
buffer 100k, exponential decay 0.99999975 to 0.1, 1-step returns).
"""

from __future__ import annotations

from typing import Any

import optuna

from sb3_mario.params import ALGO_PARAMS, Param

# keys sampled as log(1 - value) under these names (their ranges are in sb3_mario.params)
ONE_MINUS = {"gamma": "one_minus_gamma", "exploration_decay": "one_minus_decay"}
# sampled only with the schedule that uses them
SCHEDULE_KEYS = {"exploration_decay": "exponential", "exploration_fraction": "linear"}


def _suggest(trial: optuna.Trial, key: str, table: dict[str, Param]) -> None:
    search = table[key].search
    assert search is not None, key
    if search[0] == "categorical":
        trial.suggest_categorical(key, list(search[1]))
    elif key in ONE_MINUS:
        low, high = search[1], search[2]
        trial.suggest_float(ONE_MINUS[key], 1 - high, 1 - low, log=True)
    else:
        trial.suggest_float(key, search[1], search[2], log=search[3])


def sample_params(trial: optuna.Trial, algo: str = "ddqn") -> dict[str, Any]:
    """Suggest every hyperparameter of ``algo`` that has a search range in :mod:`sb3_mario.params`; returns them ready
    for ``train`` (see :func:`params_to_hyperparams`). SB3's DQN has one exploration schedule, linear."""
    table = ALGO_PARAMS[algo]
    searched = [k for k, p in table.items() if p.search is not None]
    schedule = "linear" if "exploration_schedule" not in table else None
    for key in searched:
        if key in SCHEDULE_KEYS:
            continue
        _suggest(trial, key, table)
        if key == "exploration_schedule":
            schedule = trial.params[key]
    for key, needs in SCHEDULE_KEYS.items():
        if schedule == needs and key in table:
            _suggest(trial, key, table)
    return params_to_hyperparams(trial.params)


def sample_ddqn_params(trial: optuna.Trial) -> dict[str, Any]:
    """:func:`sample_params` for DDQN."""
    return sample_params(trial, "ddqn")


def params_to_hyperparams(params: dict[str, Any]) -> dict[str, Any]:
    """Raw trial params -> DDQN hyperparameters (``gamma = 1 - one_minus_gamma`` ...)."""
    original = {raw: key for key, raw in ONE_MINUS.items()}
    return {original.get(key, key): 1.0 - value if key in original else value for key, value in params.items()}


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
