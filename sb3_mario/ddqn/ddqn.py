"""DDQN: double deep Q-learning (van Hasselt et al., 2016) on SB3's DQN, with the Mario tutorial's defaults."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule, TrainFreq
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.dqn.dqn import DQN
from stable_baselines3.dqn.policies import DQNPolicy, MultiInputPolicy
from torch.nn import functional as F

from sb3_mario.buffers import FrameStackReplayBuffer, ReplaySamples, is_frame_stack_space, with_weights
from sb3_mario.ddqn.engine import LearnerEngine, UpdateStats
from sb3_mario.ddqn.exploration import Exploration
from sb3_mario.ddqn.policies import CnnPolicy, MlpPolicy
from sb3_mario.ddqn.targets import double_q_target
from sb3_mario.envs.factory import mario_env_of
from sb3_mario.errors import ConfigError
from sb3_mario.params import DDQN_CHECKED, DDQN_PARAMS, check_kwargs, number_in
from sb3_mario.portable import PortableLoad


class DDQN(LearnerEngine, PortableLoad, DQN):
    """Double DQN: the online network picks the next action, the target network scores it.

    A drop-in subclass of SB3's ``DQN`` (saved zips load with ``DQN.load`` too) whose defaults are those of the PyTorch
    "Train a Mario-playing RL Agent" tutorial. Differences from ``DQN`` besides the target:

    - exploration (:class:`~sb3_mario.ddqn.exploration.Exploration`, ``exploration_kwargs``): the tutorial's
      ``eps *= decay`` per env transition or SB3's linear shape, over a transition counter saved with the model; a
      coin per env; optionally ez-greedy's held random actions;
    - ``gradient_steps`` counts per env: ``gradient_steps * n_envs`` steps every ``train_freq`` env steps;
    - ``max_grad_norm=None`` (the tutorial) does not clip gradients;
    - stacked image observations get :class:`~sb3_mario.FrameStackReplayBuffer` (``n_steps`` returns) by default;
      a buffer's samples carry loss weights and may take TD errors back (:mod:`sb3_mario.prioritized`), and it may
      augment them (``replay_buffer_kwargs={"augment_shift": 4}``);
    - how gradient steps run (overlapped, bfloat16) is :class:`~sb3_mario.ddqn.engine.LearnerEngine`'s (``learner_kwargs``).

    The TD target is :meth:`_td_target`, which a subclass may change (:mod:`sb3_mario.ddqn.experimental`).

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
    :param exploration_fraction: fraction of the first ``learn()`` budget over which the linear schedule decays
    :param exploration_initial_eps: initial probability of a random action
    :param exploration_final_eps: final (floor) probability of a random action
    :param max_grad_norm: gradient clipping norm (``None``: no clipping)
    :param exploration_kwargs: keyword arguments for :class:`~sb3_mario.ddqn.exploration.Exploration` (``schedule``,
        ``decay``, ``ez_greedy_mu``)
    :param learner_kwargs: the learner engine's settings (``overlap``, ``autocast_bf16``, ``ema_decay``; see
        :class:`~sb3_mario.ddqn.engine.LearnerEngine`)
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
    load_aliases: ClassVar[dict[str, str]] = {"gradient_steps": "_gradient_steps_per_env"}  # see the property
    exploration: Exploration

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
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.1,
        max_grad_norm: float | None = None,
        exploration_kwargs: dict[str, Any] | None = None,
        learner_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
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
        self.exploration_kwargs = dict(exploration_kwargs or {})
        self.learner_kwargs = dict(learner_kwargs or {})
        self.exploration_timesteps = 0  # env transitions the schedule has seen (saved: it never restarts)
        self.exploration_budget: int | None = None  # the first learn()'s total_timesteps: the linear schedule's base
        # the make_mario_env settings, saved: enjoy, -i, export and evaluation rebuild the env from the zip alone
        self.mario_env: dict[str, Any] | None = mario_env_of(self.env)
        self.algo_name = "ddqn"  # saved: the class to load the zip with (sb3_mario.config.ALGOS)
        if _init_setup_model:
            self._setup_model()

    @property
    def gradient_steps(self) -> int:  # stored per env, read scaled by the current number of envs (class docstring)
        per_env = self._gradient_steps_per_env
        return per_env * self.n_envs if per_env > 0 else per_env

    @gradient_steps.setter
    def gradient_steps(self, value: int) -> None:
        self._gradient_steps_per_env = value

    @property
    def exploration_horizon(self) -> int | None:
        """The linear schedule's length: ``exploration_fraction`` of the first ``learn()``'s steps (``None`` before)."""
        return None if self.exploration_budget is None else int(self.exploration_fraction * self.exploration_budget)

    def _setup_model(self) -> None:
        # here, not in __init__, so that load(..., gamma=...) and -i -params are checked and built too
        hyperparameters = {key: getattr(self, key) for key in DDQN_CHECKED}
        if not callable(self.learning_rate):  # a number: the YAML's "lin_1e-4" strings are config.build_kwargs' to build
            number_in(0.0, 1.0)("learning_rate", self.learning_rate)
        if not isinstance(self.train_freq, TrainFreq):  # a loaded model's is converted already
            hyperparameters["train_freq"] = self.train_freq
        check_kwargs(DDQN_PARAMS, hyperparameters)
        self.exploration = Exploration(**self.exploration_kwargs)
        self._setup_learner()
        if self.replay_buffer_class is None and is_frame_stack_space(self.observation_space):
            self.replay_buffer_class = FrameStackReplayBuffer
        if isinstance(self.replay_buffer_class, type) and issubclass(self.replay_buffer_class, FrameStackReplayBuffer):
            # the frame buffer computes n-step returns with the model's n_steps and gamma (a gamma changed on load
            # included); SB3 would warn that it ignores n_steps for a custom buffer class
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
        return self.exploration.rate(
            self.exploration_timesteps, self.exploration_initial_eps, self.exploration_final_eps, self.exploration_horizon
        )

    def _setup_learn(self, total_timesteps: int, *args: Any, **kwargs: Any) -> Any:
        result = super()._setup_learn(total_timesteps, *args, **kwargs)
        if self.exploration_budget is None:
            self.exploration_budget = int(total_timesteps)
        return result

    def load_replay_buffer(self, *args: Any, **kwargs: Any) -> None:
        """SB3's ``load_replay_buffer``; the buffer then discounts and augments as this model says (``-i -params``)."""
        super().load_replay_buffer(*args, **kwargs)
        if hasattr(self.replay_buffer, "gamma"):  # n-step buffers: the frame buffer, SB3's NStepReplayBuffer
            self.replay_buffer.gamma = self.gamma  # type: ignore[union-attr]
        if isinstance(self.replay_buffer, FrameStackReplayBuffer):  # a buffer pickled before augment_shift too
            self.replay_buffer.augment_shift = self.replay_buffer_kwargs.get("augment_shift", 0)

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
        self._finish_update()
        polyak_update(self.q_net.parameters(), self.q_net_target.parameters(), self.tau)
        polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        if getattr(self, "_logger", None) is None:  # train() called before learn(): log nowhere
            self.set_logger(Logger(folder=None, output_formats=[]))
        assert self.replay_buffer is not None
        if self.replay_buffer.size() == 0:
            raise RuntimeError("the replay buffer is empty: collect transitions before calling train()")
        # sampled in the main thread: the buffer's draws (augmentation's included) stay one sequence; and while the
        # update in flight (overlapped learning) still runs, so the learner idles only for the hand-over, unless the
        # buffer's draws depend on what that update writes back (prioritized replay)
        late = getattr(self.replay_buffer, "samples_after_update", False)
        batches = None if late else self._sample_batches(gradient_steps, batch_size)
        self._finish_update()
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        if batches is None:
            batches = self._sample_batches(gradient_steps, batch_size)
        self.run_update(lambda: self._gradient_steps(batches))

    def _sample_batches(self, gradient_steps: int, batch_size: int) -> list[ReplaySamples]:
        assert self.replay_buffer is not None
        return [
            with_weights(self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)) for _ in range(gradient_steps)
        ]

    def _td_target(self, replay_data: ReplaySamples, next_q_online: th.Tensor, next_q_target: th.Tensor) -> th.Tensor:
        """The TD targets of a batch (under ``no_grad``): the double-Q target with the buffer's n-step discounts."""
        discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
        return double_q_target(next_q_online, next_q_target, replay_data.rewards, replay_data.dones, discounts)

    def _gradient_steps(self, batches: Sequence[ReplaySamples]) -> UpdateStats:
        """One gradient step per batch, each sample's Huber loss times its weight; touches the networks and optimizer
        only (it may run in a thread). TD errors go back to a buffer whose samples carry ``priority_keys``."""
        losses, q_means, disagreements = [], [], []
        priorities: list[tuple[Any, th.Tensor]] = []
        for replay_data in batches:
            with th.no_grad():
                next_q_online = self.q_values(self.q_net, replay_data.next_observations)
                next_q_target = self.q_values(self.q_net_target, replay_data.next_observations)
            q_values = self.q_values(self.q_net, replay_data.observations)
            with th.no_grad():
                target_q_values = self._td_target(replay_data, next_q_online, next_q_target)
                disagreements.append((next_q_online.argmax(dim=1) != next_q_target.argmax(dim=1)).float().mean())
            current_q_values = th.gather(q_values, dim=1, index=replay_data.actions.long())
            per_sample = F.smooth_l1_loss(current_q_values, target_q_values, reduction="none")
            loss = (replay_data.weights * per_sample).mean()
            if replay_data.priority_keys is not None:
                td_errors = (target_q_values - current_q_values).detach().abs().flatten().float().cpu()
                priorities.append((replay_data.priority_keys, td_errors))
            losses.append(loss.detach())
            q_means.append(current_q_values.detach().mean())
            self.policy.optimizer.zero_grad()
            loss.backward()
            if self.max_grad_norm is not None:
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            self.after_gradient_step()  # the weight average (ema_decay), if any
        metrics = {"loss": losses, "q_mean": q_means, "argmax_disagreement": disagreements}
        return UpdateStats(len(batches), metrics, priorities or None)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Epsilon-greedy actions, a coin per env (:class:`Exploration`; ez-greedy's repeats are the training envs')."""
        if deterministic or (self.exploration_rate <= 0.0 and self.exploration.ez_greedy_mu is None):
            return self._greedy(observation, state, episode_start)
        vectorized = self.policy.is_vectorized_observation(observation)
        first = observation[next(iter(observation))] if isinstance(observation, dict) else observation
        n_batch = first.shape[0] if vectorized else 1
        actions = self.exploration.act(
            n_batch, self.exploration_rate, self.action_space, lambda: self._greedy(observation, state, episode_start)[0]
        )
        return (actions if vectorized else actions[0]), state

    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1) -> tuple[Any, Any]:
        if self.num_timesteps < learning_starts:
            actions = self.exploration.burn_in(n_envs, self.action_space)
            if actions is not None:  # ez-greedy holds the burn-in's random actions too
                return actions, actions
        return super()._sample_action(learning_starts, action_noise, n_envs)

    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: np.ndarray | None = None) -> None:
        super()._update_info_buffer(infos, dones)
        if dones is not None:  # SB3 hands the model each step's episode ends here (collect_rollouts)
            self.exploration.end_episodes(dones)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "exploration"]  # rebuilt from exploration_kwargs


__all__ = ["DDQN"]
