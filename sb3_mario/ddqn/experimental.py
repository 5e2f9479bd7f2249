"""Experimental DDQN variants: opt-in changes of the TD target that have not (yet) earned a place in :class:`DDQN`.

Each is a subclass that overrides :meth:`DDQN._td_target`; ``train`` and ``tune`` build it when its YAML key is set
(:func:`sb3_mario.config.model_class`), and a zip records it (``advantage_learning``) so that ``-i``, ``enjoy`` and
evaluation load the same class.
"""

from __future__ import annotations

from typing import Any

import torch as th

from sb3_mario.buffers import ReplaySamples
from sb3_mario.ddqn.ddqn import DDQN
from sb3_mario.ddqn.targets import advantage_learning_target
from sb3_mario.params import DDQN_PARAMS


class AdvantageLearningDDQN(DDQN):
    """DDQN whose TD target is advantage learning's (:func:`advantage_learning_target`), widening the action gaps.

    Measured on 1-1 (docs/experiments/2026-12-02-action-gap-levers.md): the relative action gap ~2x wider, no flags.
    Parameters are :class:`DDQN`'s, plus:

    :param advantage_learning: ``alpha`` in ``[0, 0.99]`` (the paper: 0.9; 1 would leave no fixed point)
    """

    def __init__(self, *args: Any, advantage_learning: float = 0.9, **kwargs: Any) -> None:
        DDQN_PARAMS["advantage_learning"].check("advantage_learning", advantage_learning)
        self.advantage_learning = advantage_learning
        super().__init__(*args, **kwargs)

    def _td_target(self, replay_data: ReplaySamples, next_q_online: th.Tensor, next_q_target: th.Tensor) -> th.Tensor:
        targets = super()._td_target(replay_data, next_q_online, next_q_target)
        q_target = self.q_values(self.q_net_target, replay_data.observations)
        return advantage_learning_target(targets, q_target, replay_data.actions, self.advantage_learning)


__all__ = ["AdvantageLearningDDQN"]
