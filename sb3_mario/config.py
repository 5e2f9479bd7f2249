"""Hyperparameters: YAML (rl-zoo's shape) + ``-params`` overrides -> one validated, typed config.

YAML files are keyed by env id, with a ``default:`` block used for ids without an entry. Values are plain YAML
scalars, lists and mappings; classes are named by strings looked up in registries here (never ``eval``-ed).
Every problem is a :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import copy
import importlib.resources
import re
from pathlib import Path
from typing import Any

import torch as th
import yaml
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.common.utils import LinearSchedule
from torch import nn

from sb3_mario.buffers import FrameStackReplayBuffer
from sb3_mario.ddqn import DDQN, MarioCNN
from sb3_mario.ddqn.experimental import AdvantageLearningDDQN
from sb3_mario.errors import ConfigError
from sb3_mario.params import (
    NESTED_KEYS,
    RUN_PARAMS,
    STEP_SCHEDULE_PREFIX,
    linear_schedule_ends,
    params_of,
    step_schedule_parts,
)
from sb3_mario.prioritized import PrioritizedFrameStackReplayBuffer

ALGOS: dict[str, type[OffPolicyAlgorithm]] = {"ddqn": DDQN, "dqn": DQN}
REPLAY_BUFFERS: dict[str, type[ReplayBuffer]] = {
    "FrameStackReplayBuffer": FrameStackReplayBuffer,
    "ReplayBuffer": ReplayBuffer,
}
# prioritized replay needs an algorithm that weights its loss and writes priorities back: DDQN does, SB3's DQN does not
DDQN_REPLAY_BUFFERS: dict[str, type[ReplayBuffer]] = {
    **REPLAY_BUFFERS,
    "PrioritizedFrameStackReplayBuffer": PrioritizedFrameStackReplayBuffer,
}
FEATURES_EXTRACTORS = {"MarioCNN": MarioCNN, "NatureCNN": NatureCNN}
ACTIVATIONS = {"ReLU": nn.ReLU, "Tanh": nn.Tanh, "ELU": nn.ELU, "LeakyReLU": nn.LeakyReLU}
OPTIMIZERS = {"Adam": th.optim.Adam, "AdamW": th.optim.AdamW, "RMSprop": th.optim.RMSprop, "SGD": th.optim.SGD}


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


def default_hyperparams_file(algo: str) -> Path:
    """The packaged ``hyperparams/<algo>.yml``."""
    return Path(str(importlib.resources.files("sb3_mario") / "hyperparams" / f"{algo}.yml"))


def resolve_conf_file(conf_file: str | Path) -> Path:
    """A YAML path, or the name of a packaged file (``ddqn``, ``dqn``, ``ddqn_tutorial``, ``ddqn_frontier``, ``ddqn_hop``)."""
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


class StepSchedule:
    """A learning rate that steps down once, at a fraction of the run's steps: the YAML's ``step_<initial>_<final>_<at>``
    (:func:`sb3_mario.params.step_schedule_parts`). SB3 has linear and constant schedules only (``LinearSchedule``,
    ``ConstantSchedule``); this one has their shape, a callable of SB3's ``progress_remaining``.

    :param start: the rate until the step
    :param end: the rate from the step on
    :param at: the fraction of the run's steps (``1 - progress_remaining``) where it steps down, in (0, 1)
    """

    def __init__(self, start: float, end: float, at: float) -> None:
        self.start = start
        self.end = end
        self.at = at

    def __call__(self, progress_remaining: float) -> float:
        return self.start if 1.0 - progress_remaining < self.at else self.end

    def __repr__(self) -> str:
        return f"StepSchedule(start={self.start}, end={self.end}, at={self.at})"


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
    """Check every key's type and range for ``algo`` (:mod:`sb3_mario.params`); return a validated copy."""
    schema = params_of(algo)
    out = {}
    for key, value in hyperparams.items():
        if key not in schema:
            raise ConfigError(f"{key}: unknown hyperparameter for {algo} (valid: {', '.join(sorted(schema))})")
        out[key] = schema[key].check(key, value)
    if "n_timesteps" not in out:
        raise ConfigError("n_timesteps: missing (set it in the YAML or pass -n)")
    return out


def load_hyperparams(
    algo: str, env_id: str, conf_file: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The env's block of the YAML (or its ``default:`` block), with ``overrides`` applied on top, validated."""
    path = resolve_conf_file(conf_file if conf_file is not None else algo)
    data = read_yaml(path)
    if env_id not in data and "default" not in data:
        raise ConfigError(f"{path}: no entry for {env_id!r} and no default: block")
    block = data[env_id] if env_id in data else data["default"]
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
    kwargs = {k: copy.deepcopy(v) for k, v in hyperparams.items() if k not in RUN_PARAMS}
    if isinstance(kwargs.get("train_freq"), list):
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    if isinstance(kwargs.get("learning_rate"), str):
        # schedule classes (not closures as rl-zoo's): they pickle by name, so zips load on either Python; they
        # follow SB3's progress_remaining, over the model's steps 0 .. its total (a resume's steps so far + its -n)
        rate = kwargs["learning_rate"]
        if rate.startswith(STEP_SCHEDULE_PREFIX):
            kwargs["learning_rate"] = StepSchedule(*step_schedule_parts("learning_rate", rate))
        else:
            start, end = linear_schedule_ends("learning_rate", rate)
            kwargs["learning_rate"] = LinearSchedule(start, end, end_fraction=1.0)
    if kwargs.get("replay_buffer_class") is not None:
        kwargs["replay_buffer_class"] = DDQN_REPLAY_BUFFERS[kwargs["replay_buffer_class"]]  # checked per algorithm
    policy_kwargs = kwargs.get("policy_kwargs")
    if policy_kwargs:
        for key, registry in (
            ("features_extractor_class", FEATURES_EXTRACTORS),
            ("activation_fn", ACTIVATIONS),
            ("optimizer_class", OPTIMIZERS),
        ):
            if key in policy_kwargs:
                policy_kwargs[key] = registry[policy_kwargs[key]]
    if algo == "ddqn":
        for key, (mapping, sub) in NESTED_KEYS.items():  # e.g. ez_greedy_mu -> exploration_kwargs["ez_greedy_mu"]
            if key in kwargs:
                kwargs[mapping] = {**kwargs.get(mapping, {}), sub: kwargs.pop(key)}
        check_augmentation(kwargs.get("replay_buffer_class"), kwargs.get("replay_buffer_kwargs", {}))
        if not kwargs.get("advantage_learning", 1.0):
            del kwargs["advantage_learning"]  # 0: plain DDQN (model_class)
    if algo == "dqn" and kwargs.get("replay_buffer_class") is FrameStackReplayBuffer and kwargs.get("n_steps", 1) > 1:
        kwargs["replay_buffer_kwargs"] = {
            "n_steps": kwargs.pop("n_steps"),
            "gamma": kwargs.get("gamma", 0.99),
            **kwargs.get("replay_buffer_kwargs", {}),
        }
    return kwargs


def check_augmentation(buffer: type[ReplayBuffer] | None, buffer_kwargs: dict[str, Any]) -> None:
    """``augment_shift`` is the frame buffer's (``None`` picks it for Mario's frames): refuse it for another buffer."""
    buffer = buffer or FrameStackReplayBuffer
    if buffer_kwargs.get("augment_shift") and not issubclass(buffer, FrameStackReplayBuffer):
        raise ConfigError(f"augment_shift: needs the frame buffer (image observations), not {buffer.__name__}")


def model_class(algo: str, kwargs: dict[str, Any]) -> type[OffPolicyAlgorithm]:
    """The class that ``algo``'s constructor kwargs (:func:`build_kwargs`) or a zip's saved data build: DDQN with
    ``advantage_learning`` is the experimental :class:`~sb3_mario.ddqn.experimental.AdvantageLearningDDQN`."""
    return AdvantageLearningDDQN if algo == "ddqn" and kwargs.get("advantage_learning", 0.0) > 0.0 else ALGOS[algo]


def saved_class(data: dict[str, Any]) -> type[DQN]:
    """The DQN-family class a zip was saved with: the ``algo_name`` it records (``train``, ``tune`` and DDQN save it),
    else :class:`~sb3_mario.DDQN` if it saved DDQN's exploration settings (zips from before), else SB3's ``DQN``."""
    algo = str(data.get("algo_name"))
    if algo not in ALGOS:
        algo = "ddqn" if "exploration_kwargs" in data or "exploration_schedule_name" in data else "dqn"
    cls = model_class(algo, data)
    return cls if issubclass(cls, DQN) else DQN


__all__ = [
    "ALGOS",
    "build_kwargs",
    "check_augmentation",
    "default_hyperparams_file",
    "load_hyperparams",
    "model_class",
    "parse_overrides",
    "saved_class",
    "validate",
]
