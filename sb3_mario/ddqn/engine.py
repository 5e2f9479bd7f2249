"""The learner engine: how a DQN-family algorithm runs its gradient steps, apart from what they compute.

:class:`LearnerEngine` is a mixin that DQN-family classes opt into (``class DDQN(LearnerEngine, DQN)``); the
algorithm class keeps its target, exploration and defaults, and hands its gradient steps to :meth:`run_update`. The
engine owns:

- overlapped learning (:mod:`sb3_mario.ddqn.overlap`): the gradient steps of ``learn()`` run in a background thread
  while the envs step, greedy actions come from an acting copy of the online network;
- network modes: the online network stays in train mode for the learner during an overlapped ``learn()`` (SB3's
  ``collect_rollouts`` would set it to eval mode under the learner's feet), the acting copy acts in eval mode; both run
  the head's own ``forward``;
- bfloat16 autocast of the feature extractor (:meth:`q_values`), where the CPU has it natively;
- the weight average (``ema_decay``): updated after each gradient step, it acts, evaluates and is saved;
- torch thread settings for the learner and for acting.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.dqn.policies import QNetwork

from sb3_mario.ddqn.overlap import BackgroundLearner
from sb3_mario.params import EMA_DECAY_MAX, boolean, mapping, number_in

SelfEngine = TypeVar("SelfEngine", bound="LearnerEngine")


class UpdateStats(NamedTuple):
    """What a batch of gradient steps reports: how many, per metric one tensor per step (``train/<metric>``), and for
    a prioritized buffer per step the samples' ``priority_keys`` and absolute TD errors."""

    n: int
    metrics: dict[str, list[th.Tensor]]
    priorities: list[tuple[Any, th.Tensor]] | None = None


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX). On Linux from ``/proc/cpuinfo``'s flags:
    oneDNN's own ``_is_mkldnn_bf16_supported`` also says yes for AVX512 without BF16, where it emulates bfloat16 at
    2.1x float32's time for a DDQN step (measured on a 2-core Xeon, 2026-12-07; bench/README.md); elsewhere oneDNN's
    answer.

    :param cpuinfo: the text of ``/proc/cpuinfo`` (read when ``None``)
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return bool(th.ops.mkldnn._is_mkldnn_bf16_supported())
    flags = {flag for line in cpuinfo.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[-1].split()}
    return bool(flags & {"avx512_bf16", "amx_bf16"})


@functools.cache
def bf16_is_native(device: th.device) -> bool:
    """Whether bfloat16 autocast speeds this device up. A CPU without AVX512-BF16 or AMX emulates it, 2-19x slower
    than float32 (AVX2 only: 465 against 25 ms for a batch-32 forward pass on an EPYC; AVX512 without BF16: 75 against
    35 ms for a DDQN step on a Xeon), so ``autocast_bf16`` is then ignored with one warning."""
    if device.type != "cpu":
        return True
    native = cpu_has_native_bf16()
    if not native:
        warnings.warn(
            f"autocast_bf16 ignored: this CPU ({th.backends.cpu.get_cpu_capability()}) has no native bfloat16, "
            "where it runs 2-19x slower than float32; training in float32",
            stacklevel=3,
        )
    return native


@contextlib.contextmanager
def bf16_features(q_net: QNetwork, device_type: str) -> Iterator[None]:
    """Run ``q_net``'s feature extractor under bfloat16 autocast and hand its features on as float32, so the head
    (whatever its ``forward``: plain, dueling ...) stays in float32: Q-values of ~100 in bfloat16 would be rounded to
    ~0.5, blurring the argmax. Only the calling thread uses ``q_net`` meanwhile (the acting copy is another module)."""
    extractor = q_net.features_extractor
    plain = extractor.forward

    def forward(*args: Any, **kwargs: Any) -> th.Tensor:
        with th.autocast(device_type, dtype=th.bfloat16):
            features = plain(*args, **kwargs)
        return features.float()

    extractor.forward = forward
    try:
        yield
    finally:
        del extractor.forward


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS has one, else the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def learner_threads(n_envs: int, most: int) -> int:
    """Torch threads of the overlapped learner: the cores that ``n_envs`` env workers leave (one each), at least one
    and at most ``most`` (torch's thread count of the process).

    :param n_envs: env worker processes stepping beside the learner
    :param most: the most threads to give it
    """
    return max(1, min(most, usable_cores() - n_envs))


class LearnerEngine(OffPolicyAlgorithm):
    """Runtime of a DQN-family algorithm (see the module docstring): list it before the algorithm's base class
    (``class DDQN(LearnerEngine, DQN)``), keep the engine's settings in ``learner_kwargs`` (saved with the model),
    call :meth:`_setup_learner` in ``_setup_model`` and route the gradient steps through :meth:`run_update`. The
    algorithm has an online network ``q_net``.

    ``learner_kwargs``: ``overlap`` (default ``True``): in ``learn()``, run gradient steps in a background thread while
    the envs step, acting with the weights from before the update in flight (a one-update policy lag); ``False``: the
    plain loop. ``autocast_bf16`` (default ``False``): run the feature extractor of the gradient steps' network passes
    under bfloat16 autocast (~1.5x faster on CPUs with AVX512-BF16 or AMX, see bench/README.md; ignored with a warning
    on CPUs without them, where bfloat16 is emulated and 2-19x slower); off by default because it changes the numerics.
    ``ema_decay`` (default 0: off): keep an exponential moving average of the online network's weights,
    ``average = decay * average + (1 - decay) * online`` after every gradient step, and act, evaluate and save with
    it (see :meth:`get_parameters`); the online network goes on learning as before (SB3's ``tau`` softens the
    *target* network, a different thing).
    """

    q_net: QNetwork
    learner_kwargs: dict[str, Any]
    _learner: BackgroundLearner | None = None
    _average: QNetwork | None = None
    ema_decay = 0.0

    def _setup_learner(self) -> None:
        """Read ``learner_kwargs`` (each checked as its YAML key: ``overlap_learning``, ``autocast_bf16``,
        ``ema_decay``)."""
        checks = {"overlap": boolean, "autocast_bf16": boolean, "ema_decay": number_in(0.0, EMA_DECAY_MAX)}
        settings = mapping(checks)("learner_kwargs", self.learner_kwargs or {})
        self.overlap_learning = settings.get("overlap", True)
        self.autocast_bf16 = settings.get("autocast_bf16", False)
        self.ema_decay = settings.get("ema_decay", 0.0)

    def _create_aliases(self) -> None:
        super()._create_aliases()  # type: ignore[misc]  # DQN's: q_net, q_net_target
        self._average = None
        if self.ema_decay > 0:  # starts as the online network (a loaded model's average is restored by load)
            self._average = copy.deepcopy(self.q_net)
            self._average.requires_grad_(False)
            self._average.set_training_mode(False)

    def after_gradient_step(self) -> None:
        """Move the weight average toward the online network (``ema_decay``); the algorithm calls it after each
        optimizer step, in the thread that runs the step."""
        if self._average is None:
            return
        with th.no_grad():
            average: list[th.Tensor] = list(self._average.parameters())
            th._foreach_lerp_(average, [p.detach() for p in self.q_net.parameters()], 1.0 - self.ema_decay)
            for mine, online in zip(self._average.buffers(), self.q_net.buffers(), strict=True):
                mine.copy_(online)

    @property
    def acting_net(self) -> QNetwork:
        """The network greedy actions come from: the weight average (``ema_decay``), else the online network."""
        return self._average if self._average is not None else self.q_net

    def get_parameters(self) -> dict[str, dict]:
        """SB3's parameters to save, with the weight average (``ema_decay``) as the policy's ``q_net``: a saved model,
        the best model and an evaluation's worker processes play with the average, and plain SB3 loads it. The online
        weights, which go on learning on ``-i``, travel in the zip's data (:meth:`save`, restored by :meth:`load`)."""
        params = super().get_parameters()
        if self._average is not None:
            average = {f"q_net.{k}": v for k, v in self._average.state_dict().items()}
            params["policy"] = {**params["policy"], **average}
        return params

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._finish_update()  # save the weights of every update sampled so far
        if self._average is None:
            super().save(*args, **kwargs)
            return
        self.online_q_net = {k: v.detach().cpu().clone() for k, v in self.q_net.state_dict().items()}
        try:
            super().save(*args, **kwargs)
        finally:
            del self.online_q_net

    @classmethod
    def load(cls: type[SelfEngine], *args: Any, **kwargs: Any) -> SelfEngine:
        """SB3's ``load``; with ``ema_decay``, the zip's ``q_net`` is the weight average and the online weights come
        back from its data, so that training goes on as if never stopped."""
        model = super().load(*args, **kwargs)
        online = model.__dict__.pop("online_q_net", None)
        if model._average is not None:
            model._average.load_state_dict(model.q_net.state_dict())
        if online is not None:  # also when -i turned ema_decay off: training goes on from the online weights
            model.q_net.load_state_dict({k: v.to(model.device) for k, v in online.items()})
        return model

    def q_values(self, q_net: QNetwork, observations: th.Tensor) -> th.Tensor:
        """Q-values for a gradient step, through the network's own ``forward``; with ``autocast_bf16`` (where native)
        the feature extractor runs in bfloat16."""
        if not self.autocast_bf16 or not bf16_is_native(self.device):
            return q_net(observations)
        with bf16_features(q_net, self.device.type):
            return q_net(observations)

    def run_update(self, update: Callable[[], UpdateStats]) -> None:
        """Run gradient steps now, or hand them to the background learner during an overlapped ``learn()``."""
        if self._learner is None:
            self._record_updates(update())
        else:
            self._learner.submit(update)

    def _record_updates(self, stats: UpdateStats | None) -> None:
        if stats is None:
            return
        self._n_updates += stats.n
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if stats.n > 0:
            for name, values in stats.metrics.items():
                self.logger.record(f"train/{name}", th.stack(values).mean().item())
        # prioritized replay: priorities are written here, in the thread that adds transitions, once the update applied
        for keys, td_errors in stats.priorities or []:
            self.replay_buffer.update_priorities(keys, td_errors.numpy())  # type: ignore[union-attr]

    def _finish_update(self) -> None:
        """Apply the gradient steps in flight (overlapped learning), if any."""
        if self._learner is not None:
            self._record_updates(self._learner.wait())

    def apply_pending_update(self) -> None:
        """Apply the gradient steps in flight, so that greedy actions come from the weights a save would write
        (evaluations call it first)."""
        self._finish_update()

    def _greedy(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None,
        episode_start: np.ndarray | None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Greedy actions: during an overlapped ``learn()`` from the acting copy (eval mode) of :attr:`acting_net`,
        else from :attr:`acting_net` (the policy's own ``predict`` when that is the online network)."""
        if self._learner is None and self._average is None:
            return self.policy.predict(observation, state, episode_start, deterministic=True)
        acting = self._learner.acting_net if self._learner is not None else self.acting_net
        obs_tensor, vectorized = self.policy.obs_to_tensor(observation)
        with th.no_grad():
            greedy = acting._predict(obs_tensor, deterministic=True)
        actions: np.ndarray = greedy.cpu().numpy().reshape(-1)  # Discrete actions
        return (actions if vectorized else actions.squeeze(axis=0)), state

    def collect_rollouts(self, *args: Any, **kwargs: Any) -> Any:
        if self._learner is None:
            return super().collect_rollouts(*args, **kwargs)
        # SB3 sets the policy to eval mode to act; here the acting copy acts (in eval mode) and the online network is
        # the learner's, in train mode: keep collect_rollouts from switching it under a running update
        self.policy.set_training_mode = lambda mode: None  # type: ignore[method-assign]
        try:
            return super().collect_rollouts(*args, **kwargs)
        finally:
            del self.policy.set_training_mode

    def _excluded_save_params(self) -> list[str]:
        # overlap_learning, autocast_bf16 and ema_decay are read from the saved learner_kwargs; the average is saved
        # as the policy's q_net (get_parameters)
        excluded = ["_learner", "_average", "overlap_learning", "autocast_bf16", "ema_decay"]
        return [*super()._excluded_save_params(), *excluded]

    def learn(
        self: SelfEngine,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "run",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfEngine:
        acting_threads = th.get_num_threads()
        if self.overlap_learning and self._learner is None:
            # The learner thread gets the cores the env workers leave; acting (a forward pass on n_envs frames) takes
            # one thread meanwhile. Measured best on 2 cores (bench/README.md); restored when learn() returns.
            self.policy.set_training_mode(True)
            threads = learner_threads(self.n_envs, acting_threads)
            self._learner = BackgroundLearner(self.q_net, num_threads=threads, acting_source=self.acting_net)
            th.set_num_threads(1)
        try:
            return super().learn(
                total_timesteps=total_timesteps,
                callback=callback,
                log_interval=log_interval,
                tb_log_name=tb_log_name,
                reset_num_timesteps=reset_num_timesteps,
                progress_bar=progress_bar,
            )
        finally:
            learner, self._learner = self._learner, None
            if learner is not None:
                th.set_num_threads(acting_threads)
                self._record_updates(learner.close())


__all__ = [
    "LearnerEngine",
    "UpdateStats",
    "bf16_features",
    "bf16_is_native",
    "cpu_has_native_bf16",
    "learner_threads",
    "usable_cores",
]
