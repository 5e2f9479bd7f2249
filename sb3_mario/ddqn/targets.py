"""TD targets of the DQN family as pure functions of Q-values (as sb3-contrib keeps QR-DQN's loss in
``common/utils``): :class:`~sb3_mario.DDQN` uses :func:`double_q_target`, the experimental
:class:`~sb3_mario.ddqn.experimental.AdvantageLearningDDQN` corrects it with :func:`advantage_learning_target`."""

from __future__ import annotations

import torch as th


def double_q_target(
    next_q_online: th.Tensor, next_q_target: th.Tensor, rewards: th.Tensor, dones: th.Tensor, discounts: th.Tensor | float
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


__all__ = ["advantage_learning_target", "double_q_target"]
