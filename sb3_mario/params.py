"""Hyperparameters: the one definition of every key's type, range and resume rule, per algorithm.

Everything that checks or lists a hyperparameter reads it from here: the YAML and ``-params`` validation
(:func:`sb3_mario.config.validate`), the constructor checks of :class:`~sb3_mario.DDQN`, the env settings of
:func:`~sb3_mario.make_mario_env`, the search space's bounds (:mod:`sb3_mario.search_space`) and the rules of a
resume (``train -i``). A new key is one :class:`Param` line in a table below.

Resume rules (``-params`` given with ``-i``):

- ``"model"``: set on the resumed model, and it acts everywhere it acts (``gamma`` reaches the replay buffer's n-step
  discounts, ``exploration_fraction`` the saved schedule);
- ``"env"``: changes the env settings saved with the model, and so the env it trains on;
- ``"run"``: a setting of the run (budget, stop rule, number of envs), not of the model;
- ``"refuse"``: fixed by the network, the buffer or the observation and action spaces: one line, exit 2.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sb3_mario.errors import ConfigError, EnvConfigError

Check = Callable[[str, Any], Any]
ResumeRule = Literal["model", "env", "run", "refuse"]


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def int_at_least(low: int) -> Check:
    def check(key: str, v: Any) -> int:
        if not _is_int(v) or v < low:
            raise ConfigError(f"{key}: must be an integer >= {low}, got {v!r}")
        return int(v)

    return check


def number_in(low: float, high: float, low_open: bool = False) -> Check:
    def check(key: str, v: Any) -> float:
        if not _is_num(v) or v > high or v < low or (low_open and v == low):
            bracket = "(" if low_open else "["
            raise ConfigError(f"{key}: must be a number in {bracket}{low}, {high}], got {v!r}")
        return float(v)

    return check


def optional(check: Check) -> Check:
    return lambda key, v: None if v is None else check(key, v)


def boolean(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{key}: must be true or false, got {v!r}")
    return v


def one_of(*choices: str) -> Check:
    def check(key: str, v: Any) -> str:
        if v not in choices:
            raise ConfigError(f"{key}: must be one of {', '.join(choices)}, got {v!r}")
        return str(v)

    return check


# The names in sb3_mario.config's registries of classes, as strings: this module imports nothing of the package but its
# errors (tests/test_imports.py checks they match config's maps, and that no import cycle exists).
REGISTRY_NAMES: dict[str, tuple[str, ...]] = {
    "REPLAY_BUFFERS": ("FrameStackReplayBuffer", "ReplayBuffer"),
    "DDQN_REPLAY_BUFFERS": ("FrameStackReplayBuffer", "ReplayBuffer", "PrioritizedFrameStackReplayBuffer"),
    "FEATURES_EXTRACTORS": ("MarioCNN", "NatureCNN"),
    "ACTIVATIONS": ("ReLU", "Tanh", "ELU", "LeakyReLU"),
    "OPTIMIZERS": ("Adam", "AdamW", "RMSprop", "SGD"),
}
# The action-set names and buttons of sb3_mario.envs.actions (its ACTION_SETS and BUTTON_BITS), likewise.
ACTION_SET_NAMES = ("tutorial", "right_only", "simple", "complex")
BUTTON_NAMES = ("right", "left", "down", "up", "start", "select", "B", "A", "NOOP")
_CANONICAL_BUTTONS = {name.lower(): name for name in BUTTON_NAMES}


def named(registry: str) -> Check:
    """A class given by its name in one of :mod:`sb3_mario.config`'s registries (kept as the name in the config;
    ``build_kwargs`` resolves it)."""
    return one_of(*REGISTRY_NAMES[registry])


def train_freq(key: str, v: Any) -> Any:
    if _is_int(v) and v >= 1:
        return v
    if isinstance(v, (list, tuple)) and len(v) == 2 and _is_int(v[0]) and v[0] >= 1 and v[1] in ("step", "episode"):
        return v
    raise ConfigError(f"{key}: must be a positive integer or [n, step|episode], got {v!r}")


def mapping(schema: dict[str, Check] | None = None) -> Check:
    """A YAML mapping; with a schema, its keys are validated too (unknown ones rejected)."""

    def check(key: str, v: Any) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise ConfigError(f"{key}: must be a mapping, got {v!r}")
        if schema is None:
            return dict(v)
        out = {}
        for sub, value in v.items():
            if sub not in schema:
                raise ConfigError(f"{key}.{sub}: unknown key (valid: {', '.join(sorted(schema))})")
            out[sub] = schema[sub](f"{key}.{sub}", value)
        return out

    return check


def int_list(key: str, v: Any) -> list[int]:
    if not isinstance(v, list) or not all(_is_int(x) and x >= 1 for x in v):
        raise ConfigError(f"{key}: must be a list of positive integers, got {v!r}")
    return list(v)


def action_combos(actions: Any) -> str | list[list[str]]:
    """Validate an action set: a name of :data:`ACTION_SET_NAMES` (returned as it is) or a non-empty list of non-empty
    button lists (returned with canonical button names; buttons are case-insensitive); else :class:`EnvConfigError`.
    :func:`sb3_mario.envs.resolve_actions` looks the names up."""
    if isinstance(actions, str):
        if actions not in ACTION_SET_NAMES:
            raise EnvConfigError(f"unknown action set {actions!r}; valid names: {', '.join(ACTION_SET_NAMES)}")
        return actions
    if not isinstance(actions, Sequence) or len(actions) == 0:
        raise EnvConfigError(f"actions must be an action-set name or a non-empty list of button lists, got {actions!r}")
    combos = []
    for combo in actions:
        if isinstance(combo, str) or not isinstance(combo, Sequence) or len(combo) == 0:
            raise EnvConfigError(f"each action must be a non-empty list of buttons, got {combo!r}")
        names = []
        for button in combo:
            if not isinstance(button, str) or button.lower() not in _CANONICAL_BUTTONS:
                raise EnvConfigError(f"invalid button {button!r}; valid buttons: {', '.join(BUTTON_NAMES)}")
            names.append(_CANONICAL_BUTTONS[button.lower()])
        combos.append(names)
    return combos


def actions(key: str, v: Any) -> Any:
    try:
        action_combos(v)
    except EnvConfigError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    return v


def screen_size(key: str, v: Any) -> Any:
    """A side >= 8, or ``[height, width]`` (the CNNs check that their input is at least 36x36 themselves)."""
    if isinstance(v, tuple):
        v = list(v)
    if (_is_int(v) and v >= 8) or (isinstance(v, list) and len(v) == 2 and all(_is_int(x) and x >= 8 for x in v)):
        return v
    raise ConfigError(f"{key}: must be an integer >= 8 or [height, width], got {v!r}")


def probability(key: str, v: Any) -> float:
    return number_in(0.0, 1.0)(key, v)


EMA_DECAY_MAX = 0.999999  # ema_decay: 1 would never move the average
LINEAR_SCHEDULE_PREFIX = "lin_"
STEP_SCHEDULE_PREFIX = "step_"


def _learning_rate_error(key: str, v: Any) -> ConfigError:
    return ConfigError(
        f"{key}: must be a number in [0, 1], lin_<initial> or lin_<initial>_<final>, or step_<initial>_<final>_<at> "
        f"(at: the fraction of the run's steps where it steps down, in (0, 1)), got {v!r}"
    )


def _schedule_numbers(key: str, v: str, prefix: str) -> list[float]:
    """The numbers of a schedule string ``<prefix><a>_<b>...`` (none if it lacks the prefix)."""
    parts = v[len(prefix) :].split("_") if v.startswith(prefix) else []
    try:
        return [float(part) for part in parts]
    except ValueError:
        raise _learning_rate_error(key, v) from None


def linear_schedule_ends(key: str, v: str) -> tuple[float, float]:
    """The ends of a linear learning-rate schedule: ``lin_<initial>`` falls to 0 over the run (rl-zoo's form and its
    ``linear_schedule``), ``lin_<initial>_<final>`` (this project's) to ``final``; each end a number in [0, 1]."""
    ends = _schedule_numbers(key, v, LINEAR_SCHEDULE_PREFIX)
    if len(ends) not in (1, 2) or not all(0.0 <= x <= 1.0 for x in ends):  # NaN fails the comparison too
        raise _learning_rate_error(key, v)
    return ends[0], ends[1] if len(ends) == 2 else 0.0


def step_schedule_parts(key: str, v: str) -> tuple[float, float, float]:
    """A learning rate that steps down once: ``step_<initial>_<final>_<at>`` is ``initial`` until the fraction ``at``
    of the run's steps (SB3's progress), ``final`` from there (``step_1e-4_5e-5_0.64`` of a 2M-step run: 5e-5 from
    1.28M on). Rates in [0, 1], ``at`` in (0, 1)."""
    values = _schedule_numbers(key, v, STEP_SCHEDULE_PREFIX)
    if len(values) != 3 or not all(0.0 <= x <= 1.0 for x in values[:2]) or not 0.0 < values[2] < 1.0:
        raise _learning_rate_error(key, v)
    return values[0], values[1], values[2]


def learning_rate(key: str, v: Any) -> float | str:
    """A constant rate (0: frozen, as SB3 allows), or a schedule over the run's steps (SB3's progress), kept as its
    string here (:func:`linear_schedule_ends`, :func:`step_schedule_parts`; :func:`sb3_mario.config.build_kwargs`
    builds it)."""
    if isinstance(v, str):
        if v.startswith(STEP_SCHEDULE_PREFIX):
            step_schedule_parts(key, v)
        else:
            linear_schedule_ends(key, v)
        return v
    if not _is_num(v) or not 0.0 <= v <= 1.0:
        raise _learning_rate_error(key, v)
    return float(v)


@dataclass(frozen=True)
class Param:
    """One hyperparameter.

    :param check: validates a value (raises :class:`ConfigError` naming the key) and returns it normalised
    :param resume: what ``-params key:value`` does with ``-i`` (see the module docstring)
    :param search: the Optuna search space's range: ``("float", low, high, log)`` or ``("categorical", choices)``
    """

    check: Check
    resume: ResumeRule
    search: tuple[Any, ...] | None = None


POLICY_KWARGS: dict[str, Check] = {
    "net_arch": int_list,
    "features_extractor_class": named("FEATURES_EXTRACTORS"),
    "features_extractor_kwargs": mapping({"features_dim": int_at_least(1), "normalized_image": boolean}),
    "normalize_images": boolean,
    "activation_fn": named("ACTIVATIONS"),
    "optimizer_class": named("OPTIMIZERS"),
    "optimizer_kwargs": mapping(),
}

# where frontier starts draw restarts from (sb3_mario.envs.frontier.FrontierStarts)
FRONTIER_RULES = ("frontier", "death", "death_rate", "before_death")

# make_mario_env's settings (env_kwargs); actions, screen_size and frame_stack shape the spaces the network was built
# on, show_buttons what its input shows
ENV_PARAMS: dict[str, Param] = {
    "actions": Param(actions, "refuse"),
    "frame_skip": Param(int_at_least(1), "env"),
    "screen_size": Param(screen_size, "refuse"),
    "frame_stack": Param(int_at_least(1), "refuse"),
    "max_pool": Param(boolean, "env"),
    "max_episode_steps": Param(optional(int_at_least(1)), "env"),
    "noop_max": Param(int_at_least(0), "env"),
    "reward_scale": Param(number_in(0.0, 1e6, low_open=True), "env"),
    "flag_reward": Param(number_in(0.0, 1e6), "env"),  # training only: evaluation returns leave it out
    "repeat_jump": Param(boolean, "env"),
    "sticky_actions": Param(probability, "env"),
    "stall_steps": Param(optional(int_at_least(1)), "env"),
    "show_buttons": Param(boolean, "refuse"),  # what the network's input shows
    "frontier_starts": Param(probability, "env"),  # training only: evaluation always starts at the level's start
    "frontier_rule": Param(one_of(*FRONTIER_RULES), "env"),
}

RUN_PARAMS: dict[str, Param] = {
    "n_timesteps": Param(int_at_least(1), "run"),
    "policy": Param(one_of("CnnPolicy", "MlpPolicy"), "refuse"),
    "n_envs": Param(int_at_least(1), "run"),
    "env_kwargs": Param(mapping({k: p.check for k, p in ENV_PARAMS.items()}), "env"),
    "stop_flag_rate": Param(optional(number_in(0.0, 1.0, low_open=True)), "run"),
    "max_hours": Param(optional(number_in(0.0, 1e6, low_open=True)), "run"),
}

DQN_PARAMS: dict[str, Param] = {
    "learning_rate": Param(learning_rate, "model", ("float", 1e-5, 2e-3, True)),
    "buffer_size": Param(int_at_least(1), "refuse", ("categorical", (25_000, 50_000, 100_000, 200_000))),
    "learning_starts": Param(int_at_least(0), "model", ("categorical", (1000, 5000, 10_000, 20_000))),
    "batch_size": Param(int_at_least(1), "model", ("categorical", (16, 32, 64, 128))),
    "tau": Param(number_in(0.0, 1.0), "model"),
    "gamma": Param(number_in(0.0, 1.0), "model", ("float", 0.8, 0.999, True)),  # sampled as log(1 - gamma)
    "train_freq": Param(train_freq, "model", ("categorical", (1, 2, 3, 4, 8))),
    "gradient_steps": Param(int_at_least(-1), "model"),
    "replay_buffer_class": Param(optional(named("REPLAY_BUFFERS")), "refuse"),
    "replay_buffer_kwargs": Param(mapping(), "refuse"),
    "optimize_memory_usage": Param(boolean, "refuse"),
    "n_steps": Param(int_at_least(1), "refuse", ("categorical", (1, 2, 3, 5))),
    "target_update_interval": Param(int_at_least(1), "model", ("categorical", (1000, 2500, 5000, 10_000, 20_000))),
    "exploration_fraction": Param(probability, "model", ("float", 0.02, 0.5, False)),
    "exploration_initial_eps": Param(probability, "model"),
    "exploration_final_eps": Param(probability, "model", ("float", 0.01, 0.2, False)),
    "max_grad_norm": Param(number_in(0.0, 1e9, low_open=True), "model"),
    "stats_window_size": Param(int_at_least(1), "refuse"),
    "policy_kwargs": Param(mapping(POLICY_KWARGS), "refuse"),
}

EXPLORATION_SCHEDULES = ("exponential", "linear")

DDQN_PARAMS: dict[str, Param] = {
    **DQN_PARAMS,
    "max_grad_norm": Param(optional(number_in(0.0, 1e9, low_open=True)), "model"),
    "exploration_schedule": Param(one_of(*EXPLORATION_SCHEDULES), "model", ("categorical", EXPLORATION_SCHEDULES)),
    # sampled as log(1 - decay)
    "exploration_decay": Param(number_in(0.0, 1.0, low_open=True), "model", ("float", 1 - 1e-4, 1 - 1e-7, True)),
    "ez_greedy_mu": Param(optional(number_in(1.0, 100.0, low_open=True)), "model"),  # zeta exponent, > 1
    "advantage_learning": Param(number_in(0.0, 0.99), "model"),  # alpha; 1 would leave no fixed point
    "augment_shift": Param(int_at_least(0), "model"),  # pixels of DrQ's random shift
    "overlap_learning": Param(boolean, "model"),
    "autocast_bf16": Param(boolean, "model"),
    "ema_decay": Param(number_in(0.0, EMA_DECAY_MAX), "model"),  # 0: off; the weight average acts, evaluates, saves
    "replay_buffer_class": Param(optional(named("DDQN_REPLAY_BUFFERS")), "refuse"),
    # DDQN's policies add a dueling head (ddqn/policies.py: DuelingQNetwork); SB3's DQN policies have none
    "policy_kwargs": Param(mapping({**POLICY_KWARGS, "dueling": boolean}), "refuse"),
}

# DDQN's constructor arguments that it checks against DDQN_PARAMS on construction and load (and learning_rate, train_freq)
DDQN_CHECKED: tuple[str, ...] = ("buffer_size", "learning_starts", "batch_size", "tau", "gamma", "gradient_steps", "n_steps")
DDQN_CHECKED += ("target_update_interval", "exploration_fraction", "exploration_initial_eps", "exploration_final_eps")
DDQN_CHECKED += ("max_grad_norm",)

# DDQN's YAML keys whose constructor argument is a mapping: key -> (constructor argument, its key there)
NESTED_KEYS: dict[str, tuple[str, str]] = {
    "exploration_schedule": ("exploration_kwargs", "schedule"),
    "exploration_decay": ("exploration_kwargs", "decay"),
    "ez_greedy_mu": ("exploration_kwargs", "ez_greedy_mu"),
    "overlap_learning": ("learner_kwargs", "overlap"),
    "autocast_bf16": ("learner_kwargs", "autocast_bf16"),
    "ema_decay": ("learner_kwargs", "ema_decay"),
    "augment_shift": ("replay_buffer_kwargs", "augment_shift"),
}

ALGO_PARAMS: dict[str, dict[str, Param]] = {"dqn": DQN_PARAMS, "ddqn": DDQN_PARAMS}


def params_of(algo: str) -> dict[str, Param]:
    """Every key a hyperparameter file may give for ``algo``: the run's and the algorithm's."""
    if algo not in ALGO_PARAMS:
        raise ConfigError(f"--algo: unknown algorithm {algo!r} (available: {', '.join(ALGO_PARAMS)})")
    return {**RUN_PARAMS, **ALGO_PARAMS[algo]}


def check_kwargs(table: dict[str, Param], values: dict[str, Any], error: type[ValueError] = ConfigError) -> None:
    """Check constructor arguments against a table (the same rules as the YAML); ``error`` is raised, one line."""
    for key, value in values.items():
        try:
            table[key].check(key, value)
        except ConfigError as exc:
            raise error(str(exc)) from None


def check_env_kwargs(**values: Any) -> None:
    """:func:`check_kwargs` for env settings: an :class:`EnvConfigError`."""
    check_kwargs(ENV_PARAMS, values, EnvConfigError)


__all__ = [
    "ALGO_PARAMS",
    "DDQN_PARAMS",
    "DQN_PARAMS",
    "ENV_PARAMS",
    "FRONTIER_RULES",
    "NESTED_KEYS",
    "RUN_PARAMS",
    "Param",
    "check_env_kwargs",
    "check_kwargs",
    "params_of",
]
