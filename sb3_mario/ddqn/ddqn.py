"""DDQN: double deep Q-learning (van Hasselt et al., 2016) on SB3's DQN, with the Mario tutorial's defaults."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space_channels_first
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, Schedule
from stable_baselines3.dqn.dqn import DQN
from stable_baselines3.dqn.policies import DQNPolicy, MultiInputPolicy
from torch.nn import functional as F

from sb3_mario.buffers import FrameStackReplayBuffer, is_frame_stack_space
from sb3_mario.ddqn.augment import draw_shifts, random_shift
from sb3_mario.ddqn.engine import LearnerEngine, UpdateStats
from sb3_mario.ddqn.exploration import TemporallyExtendedExploration
from sb3_mario.ddqn.policies import CnnPolicy, MlpPolicy
from sb3_mario.envs.factory import mario_env_of
from sb3_mario.errors import ConfigError
from sb3_mario.params import DDQN_PARAMS, check_kwargs
from sb3_mario.portable import numpy2_pickles, portable_custom_objects
from sb3_mario.prioritized import PrioritizedSamples

SelfDDQN = TypeVar("SelfDDQN", bound="DDQN")


def double_q_target(
    next_q_online: th.Tensor,
    next_q_target: th.Tensor,
    rewards: th.Tensor,
    dones: th.Tensor,
    discounts: th.Tensor | float,
) -> th.Tensor:
    """Double-Q TD target: ``r + discount * (1 - done) * Q_target(s', argmax_a Q_online(s', a))``.

    :param next_q_online: online network's Q-values of the next observations, ``(batch, n_actions)``
    :param next_q_target: target network's Q-values of the same observations, ``(batch, n_actions)``
    :param rewards: (n-step) returns, ``(batch, 1)``
    :param dones: 1.0 where the episode terminated (not truncated), ``(batch, 1)``
    :param discounts: ``gamma ** n`` per sample ``(batch, 1)`` (n-step, shortened at episode ends) or a float
    :return: the targets, ``(batch, 1)``
    """
    best_actions = next_q_online.argmax(dim=1, keepdim=True)
    next_q = th.gather(next_q_target, dim=1, index=best_actions)
    return rewards + (1 - dones) * discounts * next_q


def advantage_learning_target(targets: th.Tensor, q_target: th.Tensor, actions: th.Tensor, alpha: float) -> th.Tensor:
    """Advantage learning (Bellemare et al., 2016, "Increasing the Action Gap"): ``y - alpha * (V(s) - Q(s, a))``.

    The TD target of the action taken is lowered by ``alpha`` times its gap to the best action, both scored by the
    target network on the observation the transition starts from; actions that are not greedy end up
    ``1 / (1 - alpha)`` times further below the greedy one than under the plain target, while the greedy action's
    value is unchanged. Written here because SB3 and sb3-contrib have no such operator.

    :param targets: the (double-Q, n-step) TD targets, ``(batch, 1)``
    :param q_target: target network's Q-values of the observations, ``(batch, n_actions)``
    :param actions: the actions taken, ``(batch, 1)``
    :param alpha: the advantage learning coefficient in ``[0, 1)`` (the paper: 0.9); 0 returns ``targets``
    :return: the targets, ``(batch, 1)``
    """
    gaps = q_target.max(dim=1, keepdim=True).values - th.gather(q_target, dim=1, index=actions.long())
    return targets - alpha * gaps


class DDQN(LearnerEngine, DQN):
    """Double DQN: the online network picks the next action, the target network scores it.

    A drop-in subclass of SB3's ``DQN`` (saved zips load with ``DQN.load`` too) whose defaults are those of the PyTorch
    "Train a Mario-playing RL Agent" tutorial. Differences from ``DQN`` besides the target:

    - exploration ``"exponential"`` (the tutorial's ``eps *= exploration_decay`` per env transition, floored at
      ``exploration_final_eps``) or ``"linear"`` (SB3's shape, over ``exploration_fraction`` of the first ``learn()``);
      both follow a transition counter saved with the model, so a loaded or converted model carries on where it was;
    - each env of a VecEnv draws its own explore/exploit coin;
    - with ``ez_greedy_mu``, a random action is held for a random number of steps (temporally-extended
      epsilon-greedy, :mod:`sb3_mario.ddqn.exploration`), the burn-in included;
    - ``gradient_steps`` counts per env: with ``n_envs`` envs, ``gradient_steps * n_envs`` steps are taken every
      ``train_freq`` env steps, keeping one gradient step per ``train_freq`` transitions however many envs there are;
    - ``max_grad_norm=None`` (the tutorial) does not clip gradients;
    - image observations stacked on the first axis get :class:`~sb3_mario.FrameStackReplayBuffer` by default,
      with ``n_steps`` returns;
    - with ``overlap_learning`` the gradient steps of ``learn()`` run in a background thread while the envs step
      (see :mod:`sb3_mario.ddqn.overlap`: same updates, actions lag one update behind).

    :param policy: ``"CnnPolicy"`` (MarioCNN), ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (a Gymnasium env, a VecEnv or a registered id)
    :param learning_rate: Adam learning rate (or schedule)
    :param buffer_size: replay buffer size (transitions)
    :param learning_starts: env transitions collected before learning starts (the tutorial's burn-in)
    :param batch_size: minibatch size
    :param tau: soft update coefficient (1.0: hard copy)
    :param gamma: discount factor
    :param train_freq: train every ``train_freq`` env steps (or ``(n, "episode")``)
    :param gradient_steps: gradient steps per ``train_freq`` steps of each env (``-1``: one per transition collected)
    :param replay_buffer_class: replay buffer class; ``None`` picks ``FrameStackReplayBuffer`` for stacked frames
    :param replay_buffer_kwargs: keyword arguments for the replay buffer
    :param optimize_memory_usage: SB3's memory-efficient ``ReplayBuffer`` variant (the frame buffer ignores it)
    :param n_steps: n-step returns
    :param target_update_interval: env transitions between target network updates
    :param exploration_schedule: ``"exponential"`` or ``"linear"``
    :param exploration_initial_eps: initial probability of a random action
    :param exploration_final_eps: final (floor) probability of a random action
    :param exploration_decay: per-transition factor of the exponential schedule
    :param exploration_fraction: fraction of the first ``learn()`` budget over which the linear schedule decays
    :param ez_greedy_mu: temporally-extended epsilon-greedy (Dabney et al., 2021): an env whose coin says explore
        takes one random action and holds it ``n`` more steps (or to its episode's end), ``p(n) ~ n ** -ez_greedy_mu``
        (the paper: 2); ``None``: plain epsilon-greedy, one random step at a time
    :param advantage_learning: advantage learning's ``alpha`` in ``[0, 0.99]`` (Bellemare et al., 2016; the paper:
        0.9): the TD target of a non-greedy action is lowered by ``alpha`` times its gap to the greedy one
        (:func:`advantage_learning_target`), widening the action gaps; 0: the plain double-Q target
    :param augment_shift: DrQ's random shift (Kostrikov et al., 2021; Atari: 4): every replayed observation and next
        observation is shifted by up to this many pixels, each its own draw (:mod:`sb3_mario.ddqn.augment`); image
        observations only; 0: no augmentation
    :param max_grad_norm: gradient clipping norm (``None``: no clipping)
    :param overlap_learning: in ``learn()``, run gradient steps in a background thread while the envs step, acting
        with the weights from before the update in flight (a one-update policy lag); ``False``: the plain loop
    :param autocast_bf16: run the gradient steps' network passes under bfloat16 autocast (~1.5x faster on CPUs with
        AVX512-BF16 or AMX, see bench/README.md; ignored with a warning on CPUs without them, where bfloat16 is
        emulated and ~19x slower); off by default because it changes the numerics of what is learned
    :param stats_window_size: window size for rollout logging
    :param tensorboard_log: TensorBoard log directory
    :param policy_kwargs: keyword arguments for the policy
    :param verbose: verbosity level: 0 none, 1 info, 2 debug
    :param seed: random seed
    :param device: ``"cpu"``, ``"cuda"`` or ``"auto"``
    :param _init_setup_model: whether to build the networks on creation
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }

    def __init__(
        self,
        policy: str | type[DQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 2.5e-4,
        buffer_size: int = 100_000,
        learning_starts: int = 10_000,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.9,
        train_freq: int | tuple[int, str] = 3,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        target_update_interval: int = 10_000,
        exploration_schedule: str = "exponential",
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.1,
        exploration_decay: float = 0.99999975,
        exploration_fraction: float = 0.1,
        ez_greedy_mu: float | None = None,
        advantage_learning: float = 0.0,
        augment_shift: int = 0,
        max_grad_norm: float | None = None,
        overlap_learning: bool = True,
        autocast_bf16: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        check_kwargs(
            DDQN_PARAMS,
            dict(
                buffer_size=buffer_size,
                learning_starts=learning_starts,
                batch_size=batch_size,
                tau=tau,
                gamma=gamma,
                train_freq=train_freq,
                gradient_steps=gradient_steps,
                n_steps=n_steps,
                target_update_interval=target_update_interval,
                exploration_schedule=exploration_schedule,
                exploration_initial_eps=exploration_initial_eps,
                exploration_final_eps=exploration_final_eps,
                exploration_decay=exploration_decay,
                exploration_fraction=exploration_fraction,
                ez_greedy_mu=ez_greedy_mu,
                advantage_learning=advantage_learning,
                augment_shift=augment_shift,
                max_grad_norm=max_grad_norm,
                **({} if callable(learning_rate) else {"learning_rate": learning_rate}),
            ),
        )
        try:
            super().__init__(
                policy,
                env,
                learning_rate=learning_rate,
                buffer_size=buffer_size,
                learning_starts=learning_starts,
                batch_size=batch_size,
                tau=tau,
                gamma=gamma,
                train_freq=train_freq,
                gradient_steps=gradient_steps,
                replay_buffer_class=replay_buffer_class,
                replay_buffer_kwargs=replay_buffer_kwargs,
                optimize_memory_usage=optimize_memory_usage,
                n_steps=n_steps,
                target_update_interval=target_update_interval,
                exploration_fraction=exploration_fraction,
                exploration_initial_eps=exploration_initial_eps,
                exploration_final_eps=exploration_final_eps,
                max_grad_norm=max_grad_norm,  # type: ignore[arg-type]
                stats_window_size=stats_window_size,
                tensorboard_log=tensorboard_log,
                policy_kwargs=policy_kwargs,
                verbose=verbose,
                seed=seed,
                device=device,
                _init_setup_model=False,
            )
        except AssertionError as exc:  # SB3 asserts the action space type
            if "action space" in str(exc):
                raise ConfigError(f"DDQN needs a Discrete action space: {exc}") from exc
            raise
        self.exploration_schedule_name = exploration_schedule
        self.exploration_decay = exploration_decay
        # env transitions seen by the exploration schedule; saved with the model so it never restarts
        self.exploration_timesteps = 0
        # total_timesteps of the first learn(): the linear schedule spans exploration_fraction of it
        self.exploration_budget: int | None = None
        self.ez_greedy_mu = ez_greedy_mu
        self._ez: TemporallyExtendedExploration | None = None  # the repeats in progress (not saved)
        self.advantage_learning = advantage_learning
        self.augment_shift = augment_shift
        self.overlap_learning = overlap_learning  # the learner engine's settings (sb3_mario.ddqn.engine)
        self.autocast_bf16 = autocast_bf16
        # the Mario env settings (make_mario_env kwargs) the model was built on, saved with it so that enjoy, -i,
        # export and evaluation rebuild the same env however the model was made (CLI, Python API, tune)
        self.mario_env: dict[str, Any] | None = mario_env_of(self.env)
        self.algo_name = "ddqn"  # saved: the class to load the zip with (sb3_mario.config.ALGOS)
        if _init_setup_model:
            self._setup_model()

    # ``gradient_steps`` is stored per env and read scaled by the current number of envs (see class docstring).
    @property
    def gradient_steps(self) -> int:
        per_env = self._gradient_steps_per_env
        return per_env * self.n_envs if per_env > 0 else per_env

    @gradient_steps.setter
    def gradient_steps(self, value: int) -> None:
        self._gradient_steps_per_env = value

    # ``gamma`` also discounts the n-step returns of the frame buffer: setting it (a -params override on resume, or
    # by hand) reaches the buffer, whichever buffer is loaded later (see load_replay_buffer).
    @property
    def gamma(self) -> float:
        return self._gamma

    @gamma.setter
    def gamma(self, value: float) -> None:
        self._gamma = value
        buffer = self.__dict__.get("replay_buffer")
        if buffer is not None and hasattr(buffer, "gamma"):  # n-step buffers: this one, or SB3's NStepReplayBuffer
            buffer.gamma = value
        if isinstance(self.__dict__.get("replay_buffer_kwargs"), dict) and "gamma" in self.replay_buffer_kwargs:
            self.replay_buffer_kwargs["gamma"] = value

    def save(self, *args: Any, **kwargs: Any) -> None:
        # SB3 saves the instance dict, where the property keeps ``_gamma``: write ``gamma`` too, so SB3's DQN.load
        # (and any code reading the zip's data) gets this model's discount, not DQN's default
        self.__dict__["gamma"] = self._gamma
        try:
            super().save(*args, **kwargs)
        finally:
            self.__dict__.pop("gamma", None)

    @property
    def exploration_horizon(self) -> int | None:
        """Length in transitions of the linear schedule: ``exploration_fraction`` of the first ``learn()`` budget
        (``None`` before it), so a changed ``exploration_fraction`` acts on a resumed model too."""
        if self.exploration_budget is None:
            return None
        return int(self.exploration_fraction * self.exploration_budget)

    def _setup_model(self) -> None:
        # here, not in __init__, so that load(..., augment_shift=n) and -i -params are checked too
        DDQN_PARAMS["augment_shift"].check("augment_shift", self.augment_shift)
        space = getattr(self, "observation_space", None)
        if self.augment_shift > 0 and not (
            isinstance(space, spaces.Box) and len(space.shape) == 3 and is_image_space_channels_first(space)
        ):
            raise ConfigError(f"augment_shift: needs image observations (channels, height, width), got {space}")
        if "gradient_steps" in self.__dict__:  # load(..., gradient_steps=n) writes the instance dict, not the property
            self.gradient_steps = self.__dict__.pop("gradient_steps")
        if "gamma" in self.__dict__:  # load() writes the instance dict, not the property
            self.gamma = self.__dict__.pop("gamma")
        if isinstance(self.__dict__.get("exploration_schedule"), str):  # load(..., exploration_schedule="linear")
            self.exploration_schedule_name = self.__dict__.pop("exploration_schedule")
        horizon = self.__dict__.pop("exploration_horizon", None)
        if horizon is not None and getattr(self, "exploration_budget", None) is None:
            # a zip saved before exploration_budget: its horizon with the fraction it is loaded with
            self.exploration_budget = round(horizon / self.exploration_fraction) if self.exploration_fraction else 0
        if self.replay_buffer_class is None and is_frame_stack_space(self.observation_space):
            self.replay_buffer_class = FrameStackReplayBuffer
        if isinstance(self.replay_buffer_class, type) and issubclass(self.replay_buffer_class, FrameStackReplayBuffer):
            # the frame buffer computes n-step returns itself: hand it n_steps, and keep SB3 from warning that it
            # ignores n_steps for a custom buffer class (also when a saved model is loaded)
            # the model's n_steps and gamma are the buffer's (a saved gamma changed on load must not be kept)
            self.replay_buffer_kwargs = {**self.replay_buffer_kwargs, "n_steps": self.n_steps, "gamma": self.gamma}
            n_steps, self.n_steps = self.n_steps, 1
            try:
                super()._setup_model()
            finally:
                self.n_steps = n_steps
        else:
            super()._setup_model()
        self.exploration_rate = self._exploration_rate()

    def _exploration_rate(self) -> float:
        t = self.exploration_timesteps
        if self.exploration_schedule_name == "exponential":
            return max(self.exploration_final_eps, self.exploration_initial_eps * self.exploration_decay**t)
        horizon = self.exploration_horizon
        if horizon is None:
            return self.exploration_initial_eps
        fraction = min(1.0, t / horizon) if horizon > 0 else 1.0
        return self.exploration_initial_eps + fraction * (self.exploration_final_eps - self.exploration_initial_eps)

    def _setup_learn(self, total_timesteps: int, *args: Any, **kwargs: Any) -> Any:
        result = super()._setup_learn(total_timesteps, *args, **kwargs)
        if self.exploration_budget is None:
            self.exploration_budget = int(total_timesteps)
        return result

    def load_replay_buffer(self, *args: Any, **kwargs: Any) -> None:
        """SB3's ``load_replay_buffer``; a loaded n-step buffer discounts with this model's ``gamma``."""
        super().load_replay_buffer(*args, **kwargs)
        self.gamma = self.gamma

    def _on_step(self) -> None:
        """After each VecEnv step: hard/soft target update every ``target_update_interval`` transitions, epsilon."""
        self._n_calls += 1
        if self._n_calls % max(self.target_update_interval // self.n_envs, 1) == 0:
            self.sync_target()
        self.exploration_timesteps += self.n_envs
        self.exploration_rate = self._exploration_rate()
        self.logger.record("rollout/exploration_rate", self.exploration_rate)

    def sync_target(self) -> None:
        """Update the target network from the online one (a hard copy when ``tau == 1``)."""
        from stable_baselines3.common.utils import polyak_update

        self._finish_update()
        polyak_update(self.q_net.parameters(), self.q_net_target.parameters(), self.tau)
        polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        if getattr(self, "_logger", None) is None:  # train() called before learn(): log nowhere
            self.set_logger(Logger(folder=None, output_formats=[]))
        assert self.replay_buffer is not None
        if self.replay_buffer.size() == 0:
            raise RuntimeError("the replay buffer is empty: collect transitions before calling train()")
        self._finish_update()
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        batches = [self.replay_buffer.sample(batch_size, env=self._vec_normalize_env) for _ in range(gradient_steps)]
        if self.augment_shift > 0:  # drawn here, in the main thread, from the generator the buffer samples with
            pad = self.augment_shift
            batches = [
                b._replace(
                    observations=random_shift(b.observations, draw_shifts(batch_size, pad), pad),
                    next_observations=random_shift(b.next_observations, draw_shifts(batch_size, pad), pad),
                )
                for b in batches
            ]
        self.run_update(lambda: self._gradient_steps(batches))

    def _gradient_steps(self, batches: Sequence[ReplayBufferSamples | PrioritizedSamples]) -> UpdateStats:
        """One double-Q gradient step per batch; touches the networks and optimizer only (it may run in a thread)."""
        losses, q_means, disagreements = [], [], []
        priorities: list[tuple[np.ndarray, np.ndarray, th.Tensor]] = []
        for replay_data in batches:
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            with th.no_grad():
                next_q_online = self.q_values(self.q_net, replay_data.next_observations)
                next_q_target = self.q_values(self.q_net_target, replay_data.next_observations)
            q_values = self.q_values(self.q_net, replay_data.observations)
            with th.no_grad():
                target_q_values = double_q_target(
                    next_q_online, next_q_target, replay_data.rewards, replay_data.dones, discounts
                )
                if self.advantage_learning > 0.0:
                    q_target = self.q_values(self.q_net_target, replay_data.observations)
                    target_q_values = advantage_learning_target(
                        target_q_values, q_target, replay_data.actions, self.advantage_learning
                    )
                disagreements.append((next_q_online.argmax(dim=1) != next_q_target.argmax(dim=1)).float().mean())
            current_q_values = th.gather(q_values, dim=1, index=replay_data.actions.long())
            if not isinstance(replay_data, PrioritizedSamples):
                loss = F.smooth_l1_loss(current_q_values, target_q_values)
            else:  # prioritized replay: importance-weighted loss, and the TD errors for new priorities
                per_sample = F.smooth_l1_loss(current_q_values, target_q_values, reduction="none")
                loss = (replay_data.weights * per_sample).mean()
                td_errors = (target_q_values - current_q_values).detach().abs().flatten().float().cpu()
                priorities.append((replay_data.slots, replay_data.generations, td_errors))
            losses.append(loss.detach())
            q_means.append(current_q_values.detach().mean())
            self.policy.optimizer.zero_grad()
            loss.backward()
            if self.max_grad_norm is not None:
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
        metrics = {"loss": losses, "q_mean": q_means, "argmax_disagreement": disagreements}
        return UpdateStats(len(batches), metrics, priorities or None)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Epsilon-greedy actions, with an explore/exploit coin per env (SB3's ``DQN`` draws one per batch); with
        ``ez_greedy_mu``, exploring envs hold their random action (:mod:`sb3_mario.ddqn.exploration`): the repeats
        are the training envs', so a non-deterministic call from elsewhere with as many observations shares them."""
        if deterministic or (self.exploration_rate <= 0.0 and self.ez_greedy_mu is None):
            return self._greedy(observation, state, episode_start)
        vectorized = self.policy.is_vectorized_observation(observation)
        if vectorized:
            first = observation[next(iter(observation))] if isinstance(observation, dict) else observation
            n_batch = first.shape[0]
        else:
            n_batch = 1
        if self.ez_greedy_mu is not None:
            actions = self._temporally_extended().act(
                n_batch, self.exploration_rate, lambda: self._greedy(observation, state, episode_start)[0]
            )
            return (actions if vectorized else actions[0]), state
        explore = np.random.rand(n_batch) < self.exploration_rate
        if explore.all():
            actions = np.array([self.action_space.sample() for _ in range(n_batch)])
        else:
            actions, state = self._greedy(observation, state, episode_start)
            actions = np.array(actions).reshape(n_batch)
            for i in np.flatnonzero(explore):
                actions[i] = self.action_space.sample()
        return (actions if vectorized else actions[0]), state

    def _temporally_extended(self) -> TemporallyExtendedExploration:
        assert self.ez_greedy_mu is not None
        if self._ez is None or self._ez.mu != self.ez_greedy_mu:  # built on first use: also after load() or -params
            self._ez = TemporallyExtendedExploration(self.ez_greedy_mu, self.action_space)
        return self._ez

    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1) -> tuple[Any, Any]:
        if self.ez_greedy_mu is not None and self.num_timesteps < learning_starts:
            # SB3's burn-in draws one uniform action per step: hold them as exploration does afterwards
            actions = self._temporally_extended().act(n_envs, 1.0, greedy=None)
            return actions, actions
        return super()._sample_action(learning_starts, action_noise, n_envs)

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: np.ndarray | dict[str, np.ndarray],
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)
        if self._ez is not None:  # the one place SB3 hands the model a step's episode ends: cut their repeats
            self._ez.end_episodes(dones)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_ez"]

    @classmethod
    def load(
        cls: type[SelfDDQN],
        path: str | Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfDDQN:
        """SB3's ``load``; a zip saved under numpy 2 (Python >= 3.13) loads under numpy 1 too (:mod:`sb3_mario.portable`)."""
        with numpy2_pickles():
            custom_objects = portable_custom_objects(path, custom_objects) if isinstance(path, (str, Path)) else custom_objects
            return super().load(path, env, device, custom_objects, print_system_info, force_reset, **kwargs)


__all__ = ["DDQN", "advantage_learning_target", "double_q_target"]
