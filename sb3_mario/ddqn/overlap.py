"""Overlap of acting and learning: gradient steps run in a background thread while the envs step.

The schedule stays that of the plain loop, with one difference, a one-update policy lag:

- at each ``train()`` call of ``learn()`` (every ``train_freq`` env steps) the main thread waits for the previous
  update, copies the online network into the *acting* network, samples the next minibatches (so the replay buffer and
  the random number generators are used at exactly the points the plain loop uses them) and hands them to the
  background thread, which runs the gradient steps on the online network while ``collect_rollouts`` steps the envs;
- actions are chosen with the acting network, which holds the weights before the update in flight: the update the
  plain loop applies at env step ``t`` acts from ``t + train_freq`` on;
- the target network is synced, the model saved and ``learn()`` returns only after the update in flight is applied,
  so synced, saved and returned weights are those of the plain loop after the same updates.

Everything that depends on timing runs in one thread at fixed points, so a seeded run is reproducible; with random
acting (epsilon 1) the trained weights are bit-identical to the plain loop's. Prioritized replay is the exception:
its priorities are written when the update is applied, after the env steps taken meanwhile, whose new transitions
get the largest priority known before that update (and a slot they overwrite skips its update), so draws can differ.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch as th
from stable_baselines3.dqn.policies import QNetwork


class BackgroundLearner:
    """One worker thread for gradient steps plus the acting copy of the online network.

    :param q_net: the online network, trained in the background
    :param num_threads: torch intra-op threads of the learner thread (``None``: torch's default for a new thread)
    :param acting_source: what the acting copy copies at each refresh (default ``q_net``; a weight average of it)
    """

    def __init__(self, q_net: QNetwork, num_threads: int | None = None, acting_source: QNetwork | None = None) -> None:
        self.q_net = q_net
        source = acting_source if acting_source is not None else q_net
        self.acting_net = copy.deepcopy(source)
        self.acting_net.requires_grad_(False)
        self.acting_net.set_training_mode(False)  # it only acts
        # state_dict tensors share storage with the modules: pair them once, copy at every refresh
        self._pairs = list(zip(self.acting_net.state_dict().values(), source.state_dict().values(), strict=True))
        initializer = (lambda: th.set_num_threads(num_threads)) if num_threads else None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sb3_mario-learner", initializer=initializer)
        self._pending: Future[Any] | None = None

    def submit(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` (the gradient steps) in the background; call :meth:`wait` before the next submit."""
        assert self._pending is None, "wait() for the update in flight before submitting another"
        self._pending = self._pool.submit(fn)

    def wait(self) -> Any:
        """Block until the update in flight is applied (re-raising its error), refresh the acting copy.

        :return: what the update returned, or ``None`` if none was in flight
        """
        if self._pending is None:
            return None
        future, self._pending = self._pending, None
        result = future.result()
        self.refresh()
        return result

    def refresh(self) -> None:
        """Copy the acting source's weights (the online network's, or their average) into the acting network."""
        with th.no_grad():
            for acting, online in self._pairs:
                acting.copy_(online)

    def close(self) -> Any:
        """Apply the update in flight and stop the thread; returns what that update returned."""
        try:
            return self.wait()
        finally:
            self._pool.shutdown(wait=True)
