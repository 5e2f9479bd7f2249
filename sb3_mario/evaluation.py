"""The evaluation protocol: how sb3_mario scores an agent (``train``, ``tune``, ``enjoy --protocol`` and the tests).

An agent counts as playing a level when it passes the ALE's standard evaluation (Machado et al. 2018), not when it
replays one path of a deterministic emulator:

- greedy actions, on the env settings saved with the model (action set, frame skip, size, stack, ``repeat_jump`` ...),
  with sticky actions forced to ``p = 0.25`` per emulator frame (:data:`PROTOCOL_STICKY_ACTIONS`);
- each episode starts with 0-30 seeded no-op steps that press no button (:data:`PROTOCOL_NOOP_MAX`);
- episodes are capped at 4000 emulator frames (:data:`PROTOCOL_MAX_FRAMES`), and episode ``i`` of an evaluation with
  seed ``s`` is reset with seed ``s + i``, so no-ops and sticky draws are reproducible;
- the score is the flag rate, then the mean furthest x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sb3_mario.envs import make_mario_env

PROTOCOL_STICKY_ACTIONS = 0.25
PROTOCOL_NOOP_MAX = 30
PROTOCOL_MAX_FRAMES = 4000


@dataclass(frozen=True)
class EpisodeResult:
    """One protocol episode: its seed, whether it reached the flag, the furthest x, agent steps and no-ops taken."""

    seed: int
    flag: bool
    max_x: int
    steps: int
    noops: int
    game_return: float


@dataclass(frozen=True)
class ProtocolResult:
    """The episodes of one evaluation under the protocol."""

    episodes: tuple[EpisodeResult, ...]

    @property
    def n(self) -> int:
        return len(self.episodes)

    @property
    def flags(self) -> int:
        return sum(e.flag for e in self.episodes)

    @property
    def flag_rate(self) -> float:
        return self.flags / self.n if self.n else 0.0

    @property
    def mean_x(self) -> float:
        return float(np.mean([e.max_x for e in self.episodes])) if self.n else 0.0

    @property
    def score(self) -> tuple[float, float]:
        """What ranks two evaluations: the flag rate, ties broken by the mean furthest x."""
        return (self.flag_rate, self.mean_x)

    def __add__(self, other: ProtocolResult) -> ProtocolResult:
        return ProtocolResult(self.episodes + other.episodes)

    def summary(self) -> str:
        return f"{self.flags}/{self.n} flags ({self.flag_rate:.0%}), mean x {self.mean_x:.0f}"


def protocol_env_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """A model's saved env settings (``mario_env``) turned into the protocol's evaluation env."""
    out = {k: v for k, v in env_kwargs.items() if k not in ("algo",)}
    frame_skip = int(out.get("frame_skip", 4))
    out.update(
        sticky_actions=PROTOCOL_STICKY_ACTIONS,
        noop_max=PROTOCOL_NOOP_MAX,
        max_episode_steps=math.ceil(PROTOCOL_MAX_FRAMES / frame_skip),
    )
    return out


def evaluate_protocol(
    model: Any,
    env_kwargs: dict[str, Any],
    n_episodes: int,
    seed: int,
    record: list[np.ndarray] | None = None,
) -> ProtocolResult:
    """Play ``n_episodes`` greedy episodes under the protocol, episode ``i`` seeded ``seed + i``.

    :param model: anything with SB3's ``predict(obs, deterministic=True)``
    :param env_kwargs: the model's own env settings (:func:`sb3_mario.make_mario_env` kwargs, with ``env_id``)
    :param n_episodes: episodes to play (>= 1)
    :param seed: seed of the first episode
    :param record: if a list, the RGB frames of every step are appended to it
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    render_mode = "rgb_array" if record is not None else None
    env = make_mario_env(**protocol_env_kwargs(env_kwargs), render_mode=render_mode)
    episodes = []
    try:
        for i in range(n_episodes):
            obs, info = env.reset(seed=seed + i)
            noops = int(info.get("noops", 0))
            steps, total, done = 0, 0.0, False
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, reward, terminated, truncated, info = env.step(int(action))
                steps += 1
                total += float(reward)
                done = terminated or truncated
                if record is not None:
                    record.append(env.render())  # type: ignore[arg-type]
            scale = float(env_kwargs.get("reward_scale", 1.0))
            episodes.append(
                EpisodeResult(seed + i, bool(info["flag_get"]), int(info["max_x_pos"]), steps, noops, total / scale)
            )
    finally:
        env.close()
    return ProtocolResult(tuple(episodes))


__all__ = [
    "PROTOCOL_MAX_FRAMES",
    "PROTOCOL_NOOP_MAX",
    "PROTOCOL_STICKY_ACTIONS",
    "EpisodeResult",
    "ProtocolResult",
    "evaluate_protocol",
    "protocol_env_kwargs",
]
