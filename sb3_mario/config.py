"""Hyperparameters: YAML (rl-zoo's shape) + ``-params`` overrides -> one validated, typed config.

YAML files are keyed by env id, with a ``default:`` block used for ids without an entry. Values are plain YAML
scalars, lists and mappings; classes are named by strings looked up in registries here (never ``eval``-ed).
Every problem is a :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import copy
import importlib.resources
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch as th
import yaml
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.torch_layers import NatureCNN
from torch import nn

from sb3_mario.buffers import FrameStackReplayBuffer
from sb3_mario.ddqn import DDQN, MarioCNN
from sb3_mario.envs.actions import resolve_actions
from sb3_mario.errors import ConfigError, EnvConfigError

ALGOS: dict[str, type[OffPolicyAlgorithm]] = {"ddqn": DDQN, "dqn": DQN}
REPLAY_BUFFERS: dict[str, type[ReplayBuffer]] = {
    "FrameStackReplayBuffer": FrameStackReplayBuffer,
    "ReplayBuffer": ReplayBuffer,
}
FEATURES_EXTRACTORS = {"MarioCNN": MarioCNN, "NatureCNN": NatureCNN}
ACTIVATIONS = {"ReLU": nn.ReLU, "Tanh": nn.Tanh, "ELU": nn.ELU, "LeakyReLU": nn.LeakyReLU}
OPTIMIZERS = {"Adam": th.optim.Adam, "AdamW": th.optim.AdamW, "RMSprop": th.optim.RMSprop, "SGD": th.optim.SGD}

Check = Callable[[str, Any], Any]


class YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4`` and gives a string)."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_load(text: str) -> Any:
    """Parse YAML safely (no Python objects), with :class:`YamlLoader`'s float rule."""
    return yaml.load(text, Loader=YamlLoader)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


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


def named(registry: dict[str, Any]) -> Check:
    """A class given by its registered name (kept as the name in the config; resolved by :func:`build_kwargs`)."""
    return one_of(*registry)


def train_freq(key: str, v: Any) -> Any:
    if _is_int(v) and v >= 1:
        return v
    if isinstance(v, list) and len(v) == 2 and _is_int(v[0]) and v[0] >= 1 and v[1] in ("step", "episode"):
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


def actions(key: str, v: Any) -> Any:
    try:
        resolve_actions(v)
    except EnvConfigError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    return v


def screen_size(key: str, v: Any) -> Any:
    if (_is_int(v) and v >= 36) or (isinstance(v, list) and len(v) == 2 and all(_is_int(x) and x >= 36 for x in v)):
        return v
    raise ConfigError(f"{key}: must be an integer >= 36 or [height, width], got {v!r}")


ENV_KWARGS: dict[str, Check] = {
    "actions": actions,
    "frame_skip": int_at_least(1),
    "screen_size": screen_size,
    "frame_stack": int_at_least(1),
    "max_pool": boolean,
    "max_episode_steps": optional(int_at_least(1)),
    "noop_max": int_at_least(0),
    "reward_scale": number_in(0.0, 1e6, low_open=True),
    "repeat_jump": boolean,
}
POLICY_KWARGS: dict[str, Check] = {
    "net_arch": int_list,
    "features_extractor_class": named(FEATURES_EXTRACTORS),
    "features_extractor_kwargs": mapping({"features_dim": int_at_least(1), "normalized_image": boolean}),
    "normalize_images": boolean,
    "activation_fn": named(ACTIVATIONS),
    "optimizer_class": named(OPTIMIZERS),
    "optimizer_kwargs": mapping(),
}
# keys of a run (not algorithm arguments)
RUN_KEYS: dict[str, Check] = {
    "n_timesteps": int_at_least(1),
    "policy": one_of("CnnPolicy", "MlpPolicy"),
    "n_envs": int_at_least(1),
    "env_kwargs": mapping(ENV_KWARGS),
}
# algorithm arguments shared by DQN and DDQN
DQN_KEYS: dict[str, Check] = {
    "learning_rate": number_in(0.0, 1.0, low_open=True),
    "buffer_size": int_at_least(1),
    "learning_starts": int_at_least(0),
    "batch_size": int_at_least(1),
    "tau": number_in(0.0, 1.0),
    "gamma": number_in(0.0, 1.0),
    "train_freq": train_freq,
    "gradient_steps": int_at_least(-1),
    "replay_buffer_class": optional(named(REPLAY_BUFFERS)),
    "replay_buffer_kwargs": mapping(),
    "optimize_memory_usage": boolean,
    "n_steps": int_at_least(1),
    "target_update_interval": int_at_least(1),
    "exploration_fraction": number_in(0.0, 1.0),
    "exploration_initial_eps": number_in(0.0, 1.0),
    "exploration_final_eps": number_in(0.0, 1.0),
    "max_grad_norm": number_in(0.0, 1e9, low_open=True),
    "stats_window_size": int_at_least(1),
    "policy_kwargs": mapping(POLICY_KWARGS),
}
ALGO_KEYS: dict[str, dict[str, Check]] = {
    "dqn": DQN_KEYS,
    "ddqn": {
        **DQN_KEYS,
        "max_grad_norm": optional(number_in(0.0, 1e9, low_open=True)),
        "exploration_schedule": one_of("exponential", "linear"),
        "exploration_decay": number_in(0.0, 1.0, low_open=True),
        "overlap_learning": boolean,
        "autocast_bf16": boolean,
    },
}


def default_hyperparams_file(algo: str) -> Path:
    """The packaged ``hyperparams/<algo>.yml``."""
    return Path(str(importlib.resources.files("sb3_mario") / "hyperparams" / f"{algo}.yml"))


def resolve_conf_file(conf_file: str | Path) -> Path:
    """A YAML path, or the name of a packaged file (``ddqn``, ``dqn``, ``ddqn_tutorial``)."""
    path = Path(conf_file)
    if path.is_file() or path.suffix in (".yml", ".yaml"):
        return path
    packaged = default_hyperparams_file(str(conf_file))
    if packaged.is_file():
        return packaged
    raise ConfigError(f"-conf: {conf_file}: no such file or packaged hyperparameter set")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with one-line errors for a missing or malformed file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of env ids to hyperparameters")
    return data


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["gamma:0.99", "policy_kwargs:{net_arch: [64]}"]`` -> typed values (each value read as YAML, never eval)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition(":")
        if not sep or not key:
            raise ConfigError(f"-params: expected key:value, got {pair!r}")
        try:
            out[key.strip()] = yaml_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"-params {key}: cannot parse {raw!r} as a YAML value") from None
    return out


def validate(algo: str, hyperparams: dict[str, Any]) -> dict[str, Any]:
    """Check every key's type and range for ``algo``; return a validated copy."""
    if algo not in ALGO_KEYS:
        raise ConfigError(f"--algo: unknown algorithm {algo!r} (available: {', '.join(ALGOS)})")
    schema = {**RUN_KEYS, **ALGO_KEYS[algo]}
    out = {}
    for key, value in hyperparams.items():
        if key not in schema:
            raise ConfigError(f"{key}: unknown hyperparameter for {algo} (valid: {', '.join(sorted(schema))})")
        out[key] = schema[key](key, value)
    if "n_timesteps" not in out:
        raise ConfigError("n_timesteps: missing (set it in the YAML or pass -n)")
    return out


def load_hyperparams(
    algo: str, env_id: str, conf_file: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The env's block of the YAML (or its ``default:`` block), with ``overrides`` applied on top, validated."""
    path = resolve_conf_file(conf_file if conf_file is not None else algo)
    data = read_yaml(path)
    if env_id in data:
        block = data[env_id]
    elif "default" in data:
        block = data["default"]
    else:
        raise ConfigError(f"{path}: no entry for {env_id!r} and no default: block")
    if not isinstance(block, dict):
        raise ConfigError(f"{path}: the entry for {env_id!r} must be a mapping")
    hyperparams = copy.deepcopy(block)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(hyperparams.get(key), dict):
            hyperparams[key] = {**hyperparams[key], **value}  # e.g. -params env_kwargs:{frame_skip: 2}
        else:
            hyperparams[key] = value
    return validate(algo, hyperparams)


def build_kwargs(algo: str, hyperparams: dict[str, Any]) -> dict[str, Any]:
    """Algorithm constructor kwargs from a validated config: registered names become classes."""
    kwargs = {k: copy.deepcopy(v) for k, v in hyperparams.items() if k not in RUN_KEYS}
    if isinstance(kwargs.get("train_freq"), list):
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    if kwargs.get("replay_buffer_class") is not None:
        kwargs["replay_buffer_class"] = REPLAY_BUFFERS[kwargs["replay_buffer_class"]]
    policy_kwargs = kwargs.get("policy_kwargs")
    if policy_kwargs:
        for key, registry in (
            ("features_extractor_class", FEATURES_EXTRACTORS),
            ("activation_fn", ACTIVATIONS),
            ("optimizer_class", OPTIMIZERS),
        ):
            if key in policy_kwargs:
                policy_kwargs[key] = registry[policy_kwargs[key]]
    if algo == "dqn" and kwargs.get("replay_buffer_class") is FrameStackReplayBuffer and kwargs.get("n_steps", 1) > 1:
        kwargs["replay_buffer_kwargs"] = {
            "n_steps": kwargs.pop("n_steps"),
            "gamma": kwargs.get("gamma", 0.99),
            **kwargs.get("replay_buffer_kwargs", {}),
        }
    return kwargs


__all__ = ["ALGOS", "build_kwargs", "default_hyperparams_file", "load_hyperparams", "parse_overrides", "validate"]
