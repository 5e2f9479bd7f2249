"""Policies for DDQN: SB3's DQN policies with :class:`MarioCNN`, the tutorial's network, as the default extractor."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import CnnPolicy as SB3CnnPolicy
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from stable_baselines3.dqn.policies import MlpPolicy as SB3MlpPolicy
from torch import nn

from sb3_mario.errors import ConfigError

# The conv stack (8/4, 4/2, 3/1 without padding) needs at least this many pixels per side.
MIN_SCREEN_SIDE = 36


class MarioCNN(NatureCNN):
    """The tutorial's ``MarioNet`` trunk: conv 32-8/4, conv 64-4/2, conv 64-3/1, linear -> ``features_dim``, ReLUs.

    Layer for layer this is SB3's ``NatureCNN`` (same constructor, same parameter names), so the two are
    interchangeable in ``policy_kwargs`` and a ``MarioCNN`` state dict loads into a ``NatureCNN``. What it adds is a
    clear error for observation spaces it cannot handle.

    :param observation_space: channel-first image space, e.g. ``Box(0, 255, (4, 84, 84), uint8)``
    :param features_dim: size of the output features
    :param normalized_image: whether observations are already scaled to [0, 1] floats (then dtype is not checked)
    """

    def __init__(self, observation_space: spaces.Space, features_dim: int = 512, normalized_image: bool = False) -> None:
        check_image_space(observation_space, normalized_image)
        super().__init__(observation_space, features_dim=features_dim, normalized_image=normalized_image)


def check_image_space(observation_space: spaces.Space, normalized_image: bool = False) -> None:
    """Raise :class:`ConfigError` unless the space is a channel-first image large enough for the conv stack."""
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 3:
        raise ConfigError(
            f"MarioCNN needs a channel-first image observation space (C, H, W), got {observation_space}; "
            "use MlpPolicy for vector observations"
        )
    if not is_image_space(observation_space, check_channels=False, normalized_image=normalized_image):
        raise ConfigError(f"MarioCNN needs uint8 images in [0, 255] (or normalized_image=True), got {observation_space}")
    channels, height, width = observation_space.shape
    if min(height, width) < MIN_SCREEN_SIDE or channels > min(height, width):
        raise ConfigError(
            f"MarioCNN needs channel-first frames of at least {MIN_SCREEN_SIDE}x{MIN_SCREEN_SIDE} "
            f"(C, H, W), got shape {observation_space.shape}"
        )


class DuelingQNetwork(QNetwork):
    """A dueling head (Wang et al. 2016): ``Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')`` on the shared features.

    SB3's ``QNetwork`` has one stream (``q_net``); this one has two, ``value`` (one output) and ``advantage`` (one per
    action), each an MLP of ``net_arch`` after the features. Parameters are ``QNetwork``'s.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor, features_dim, net_arch, activation_fn, normalize_images
        )
        del self.q_net  # replaced by the two streams
        arch = self.net_arch
        self.value = nn.Sequential(*create_mlp(features_dim, 1, arch, activation_fn))
        self.advantage = nn.Sequential(*create_mlp(features_dim, int(action_space.n), arch, activation_fn))

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        features = self.extract_features(obs, self.features_extractor)
        advantage = self.advantage(features)
        return self.value(features) + advantage - advantage.mean(dim=1, keepdim=True)


class _DuelingOption(DQNPolicy):
    """``dueling=True`` builds :class:`DuelingQNetwork` heads (online and target) instead of SB3's ``QNetwork``."""

    dueling: bool = False

    def __init__(self, *args: Any, dueling: bool = False, **kwargs: Any) -> None:
        self.dueling = dueling  # read by make_q_net, which SB3's constructor calls
        super().__init__(*args, **kwargs)

    def make_q_net(self) -> QNetwork:
        if not self.dueling:
            return super().make_q_net()
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return DuelingQNetwork(**net_args).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "dueling": self.dueling}


class CnnPolicy(_DuelingOption, SB3CnnPolicy):
    """SB3's DQN ``CnnPolicy`` with :class:`MarioCNN` and, as with ``NatureCNN``, no hidden layer after it.

    Parameters are those of ``stable_baselines3.dqn.policies.CnnPolicy``, plus ``dueling``; Adam defaults to
    ``fused=True``.

    :param dueling: a :class:`DuelingQNetwork` head instead of one linear stream
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = MarioCNN,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        dueling: bool = False,
    ) -> None:
        if net_arch is None and issubclass(features_extractor_class, NatureCNN):
            net_arch = []  # the tutorial: Linear(512, n_actions) straight after the trunk
        if optimizer_kwargs is None and optimizer_class is th.optim.Adam:
            # the same Adam update as one fused kernel: 2 ms instead of 14 per step on CPU (bench/README.md)
            optimizer_kwargs = {"fused": True}
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch,
            activation_fn,
            features_extractor_class,
            features_extractor_kwargs,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
            dueling=dueling,
        )


class MlpPolicy(_DuelingOption, SB3MlpPolicy):
    """SB3's DQN ``MlpPolicy``, plus ``dueling`` (a :class:`DuelingQNetwork` head instead of one stream)."""


__all__ = ["CnnPolicy", "DQNPolicy", "DuelingQNetwork", "MarioCNN", "MlpPolicy"]
