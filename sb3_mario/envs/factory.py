"""Factories: one preprocessed Mario env, or an SB3 VecEnv of them."""

from __future__ import annotations

import inspect
import multiprocessing
import operator
import signal
from functools import partial
from typing import Any

import gymnasium
from gymnasium.wrappers import FrameStackObservation, TimeLimit, TransformReward
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from sb3_mario.envs.actions import DEFAULT_ACTIONS, ActionsSpec, resolve_actions
from sb3_mario.envs.backend import MarioBackendEnv, check_env_id, check_snapshot_support
from sb3_mario.envs.frontier import BEFORE_DEATH_FRAMES, FrontierStarts
from sb3_mario.envs.wrappers import (
    MARIO_INFO_KEYS,
    STALL_PENALTY,
    ButtonsObservation,
    FlagReward,
    GrayResizeObservation,
    MarioEpisodeStats,
    MarioFrameSkip,
    NoopStart,
    StallTermination,
)
from sb3_mario.errors import EnvConfigError
from sb3_mario.params import ENV_PARAMS, RUN_PARAMS, check_env_kwargs, check_kwargs

VEC_ENV_TYPES = ("dummy", "subproc")


def make_mario_env(
    env_id: str = "SuperMarioBros-1-1-v0",
    actions: ActionsSpec = DEFAULT_ACTIONS,
    frame_skip: int = 4,
    screen_size: int | tuple[int, int] = 84,
    frame_stack: int = 4,
    max_pool: bool = False,
    max_episode_steps: int | None = None,
    noop_max: int = 0,
    reward_scale: float = 1.0,
    flag_reward: float = 0.0,
    repeat_jump: bool = False,
    sticky_actions: float = 0.0,
    stall_steps: int | None = None,
    show_buttons: bool = False,
    frontier_starts: float = 0.0,
    frontier_rule: str = "frontier",
    render_mode: str | None = None,
    seed: int | None = None,
) -> gymnasium.Env:
    """Super Mario Bros preprocessed as in the PyTorch tutorial, ready for SB3.

    Observations are uint8 ``(frame_stack, screen_size, screen_size)``, channel-first (SB3 adds no transpose).

    :param env_id: gym-super-mario-bros id: ``SuperMarioBros-<world>-<stage>-v<0..3>``, ``SuperMarioBros-v0..v3``,
        ``SuperMarioBrosRandomStages-v0..v3``, ``SuperMarioBros2-v0..v1``
    :param actions: action-set name (``"tutorial"``: [right], [right, A]) or a list of button combos
    :param frame_skip: emulator frames per agent step; rewards are summed
    :param screen_size: side of the square grayscale frame, or ``(height, width)``
    :param frame_stack: frames stacked on the channel axis
    :param max_pool: pixel-wise max of the last two skipped frames
    :param max_episode_steps: truncate episodes after this many agent steps (``truncated=True``); ``None`` for no limit
    :param reward_scale: multiply every (frame-summed) reward by this (Monitor records the scaled returns)
    :param flag_reward: training aid: reward added, in game units (before ``reward_scale``), on the step that reaches
        the flag, which gym-super-mario-bros does not pay for (:class:`FlagReward`); 0 (default) is off. Evaluation
        returns leave it out (:func:`play_env_kwargs`); the protocol's score is the flag rate either way
    :param noop_max: start each episode with 0 to ``noop_max`` (seeded) no-op steps that press no button (0: none)
    :param repeat_jump: a held A jumps again on landing (see :class:`~sb3_mario.envs.MarioBackendEnv`); off in the
        tutorial, where an agent holding A at a wall stays there
    :param sticky_actions: per emulator frame, the probability that the previous frame's buttons are pressed again
        instead of the chosen ones (the ALE's sticky actions; 0.25 is the standard evaluation, 0 is off)
    :param stall_steps: end an episode as lost (``terminated``, a death's penalty times ``reward_scale``) once the
        furthest x has not grown for this many agent steps after the no-op start (:class:`StallTermination`);
        ``None`` (the default) never
    :param show_buttons: paint the buttons the game got on each step's last frame into the frame's top-left corner
        (:class:`ButtonsObservation`), so the network can see that A is held; off in the tutorial
    :param frontier_starts: training only: the probability ``q`` that a reset starts from an archived snapshot of an
        earlier episode instead of the level's start (:class:`~sb3_mario.envs.frontier.FrontierStarts`; needs
        Python >= 3.13's nes-py 9 and a single-stage id); 0 (default) is off. Evaluation never restarts
        (:func:`play_env_kwargs`)
    :param frontier_rule: which archived snapshots restarts lean toward: ``"frontier"`` (the furthest x),
        ``"death"`` (where deaths follow), ``"death_rate"`` (where deaths follow per episode that passed) or
        ``"before_death"`` (~2 s of game time before recorded deaths)
    :param render_mode: ``None``, ``"rgb_array"`` (``render()`` returns the RGB screen) or ``"human"``
    :param seed: if given, seeds the action space and performs the first ``reset(seed=seed)``
    """
    settings = {
        "actions": actions,
        "frame_skip": frame_skip,
        "screen_size": screen_size,
        "frame_stack": frame_stack,
        "max_pool": max_pool,
        "max_episode_steps": max_episode_steps,
        "noop_max": noop_max,
        "reward_scale": reward_scale,
        "flag_reward": flag_reward,
        "repeat_jump": repeat_jump,
        "sticky_actions": sticky_actions,
        "stall_steps": stall_steps,
        "show_buttons": show_buttons,
        "frontier_starts": frontier_starts,
        "frontier_rule": frontier_rule,
    }
    check_env_kwargs(**settings)
    if frontier_starts > 0:
        check_snapshot_support(env_id, "frontier starts")
    backend = MarioBackendEnv(env_id, actions, render_mode=render_mode, repeat_jump=repeat_jump, sticky_actions=sticky_actions)
    # the settings that rebuild this env, read back by mario_env_of (models save them)
    backend.mario_env_kwargs = {"env_id": backend.env_id, **settings}  # type: ignore[attr-defined]
    env: gymnasium.Env = MarioFrameSkip(backend, skip=frame_skip, max_pool=max_pool)
    if flag_reward:
        env = FlagReward(env, flag_reward)
    if reward_scale != 1.0:
        env = TransformReward(env, partial(operator.mul, float(reward_scale)))
    env = GrayResizeObservation(env, screen_size=screen_size)
    if show_buttons:
        env = ButtonsObservation(env)
    if frontier_starts > 0:  # below the frame stack: a restart is a reset for every wrapper above
        before_death_steps = -(-BEFORE_DEATH_FRAMES // frame_skip)
        env = FrontierStarts(env, frontier_starts, frontier_rule, before_death_steps=before_death_steps)
    env = FrameStackObservation(env, stack_size=frame_stack)
    if max_episode_steps is not None:
        env = TimeLimit(env, max_episode_steps=max_episode_steps)
    env = MarioEpisodeStats(env)
    if noop_max:
        env = NoopStart(env, noop_max)
    if stall_steps is not None:
        env = StallTermination(env, stall_steps, penalty=STALL_PENALTY * reward_scale)
    if seed is not None:
        env.action_space.seed(seed)
        env.reset(seed=seed)
    return env


# Settings that only training uses, and what every evaluation, enjoy and load_pretrained play with instead.
PLAY_ENV_KWARGS: dict[str, Any] = {"frontier_starts": 0.0, "flag_reward": 0.0}


def play_env_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """A model's saved env settings for playing it: every episode starts at the level's start (no frontier starts),
    whatever the model was trained with.

    :param env_kwargs: :func:`make_mario_env` settings, e.g. a model's ``mario_env``
    """
    return {**env_kwargs, **PLAY_ENV_KWARGS}


def env_defaults() -> dict[str, Any]:
    """:func:`make_mario_env`'s default env settings: what a model saved before a setting existed was built with."""
    parameters = inspect.signature(make_mario_env).parameters
    return {key: parameters[key].default for key in ENV_PARAMS}


def mario_env_of(env: Any) -> dict[str, Any] | None:
    """The :func:`make_mario_env` kwargs (with ``env_id``) of a Mario env or VecEnv of them; ``None`` for other envs."""
    if env is None:
        return None
    try:
        if isinstance(env, VecEnv):
            settings = env.get_attr("mario_env_kwargs", indices=[0])[0]
        else:
            settings = env.get_wrapper_attr("mario_env_kwargs")
    except (AttributeError, EOFError, BrokenPipeError):
        return None
    return dict(settings) if isinstance(settings, dict) else None


def vec_archive_counts(venv: VecEnv) -> list[dict[str, Any]] | None:
    """Each env's :meth:`~sb3_mario.envs.frontier.FrontierStarts.archive_counts` (from its worker process); ``None``
    without frontier starts."""
    settings = mario_env_of(venv) or {}
    if not settings.get("frontier_starts", 0.0):
        return None
    return list(venv.env_method("archive_counts"))


def set_vec_archive_counts(venv: VecEnv, counts: list[dict[str, Any]]) -> str:
    """Give env ``i`` the saved counts of env ``i`` (of ``i mod`` their number when ``--n-envs`` changed); returns a
    line saying what was restored.

    :param counts: from :func:`vec_archive_counts`
    """
    for i in range(venv.num_envs):
        venv.env_method("set_archive_counts", counts[i % len(counts)], indices=[i])
    cells = sum(len(c["passes"]) for c in counts)
    return (
        f"restored the frontier archive's counts of {len(counts)} env(s) ({cells} cells passed); "
        "their snapshots refill as episodes pass them"
    )


def _make_worker_env(**kwargs: Any) -> gymnasium.Env:
    """Build an env in a SubprocVecEnv worker that leaves SIGINT/SIGTERM to the parent.

    Ctrl-C reaches the whole process group; the parent stops training, saves and closes the workers itself. A worker
    whose parent dies exits when its pipe closes.
    """
    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return make_mario_env(**kwargs)


def make_mario_vec_env(
    env_id: str = "SuperMarioBros-1-1-v0",
    n_envs: int = 1,
    vec_env: str = "subproc",
    start_method: str | None = None,
    seed: int | None = None,
    monitor_dir: str | None = None,
    **env_kwargs: Any,
) -> VecEnv:
    """``n_envs`` Mario envs, each wrapped in SB3's ``Monitor`` with the Mario info keys, as an SB3 VecEnv.

    :param env_id: see :func:`make_mario_env`
    :param n_envs: number of envs
    :param vec_env: ``"subproc"`` (one process per env) or ``"dummy"`` (all in this process)
    :param start_method: multiprocessing start method for ``"subproc"``: ``"forkserver"`` (default where available)
        or ``"spawn"``; ``"fork"`` is allowed but unsafe once torch has started threads
    :param seed: env ``i`` is seeded with ``seed + i``
    :param monitor_dir: where Monitor writes its CSVs (``None``: not written)
    :param env_kwargs: passed to :func:`make_mario_env`
    """
    check_kwargs(RUN_PARAMS, {"n_envs": n_envs}, EnvConfigError)
    if vec_env not in VEC_ENV_TYPES:
        raise EnvConfigError(f"vec_env must be one of {', '.join(VEC_ENV_TYPES)}, got {vec_env!r}")
    # Validate in this process so that a bad id or action set is a clear error here, not a dead worker.
    check_env_id(env_id)
    resolve_actions(env_kwargs.get("actions", DEFAULT_ACTIONS))
    if env_kwargs.get("frontier_starts", 0.0) > 0:
        check_snapshot_support(env_id, "frontier starts")
    make_env = partial(make_mario_env if vec_env == "dummy" else _make_worker_env, env_id=env_id, **env_kwargs)
    monitor_kwargs = {"info_keywords": MARIO_INFO_KEYS}
    kwargs: dict[str, Any] = {"n_envs": n_envs, "seed": seed, "monitor_dir": monitor_dir, "monitor_kwargs": monitor_kwargs}
    if vec_env == "dummy":
        return make_vec_env(make_env, vec_env_cls=DummyVecEnv, **kwargs)
    if start_method is None:
        start_method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    if start_method == "forkserver":
        # Workers unpickle SB3's worker function, importing SB3 (and so legacy gym, which prints its notice) before
        # sb3_mario: preloading sb3_mario in the fork server imports gym quietly once for every worker.
        multiprocessing.get_context("forkserver").set_forkserver_preload(["__main__", "sb3_mario"])
    try:
        return make_vec_env(make_env, vec_env_cls=SubprocVecEnv, vec_env_kwargs={"start_method": start_method}, **kwargs)
    except (EOFError, ConnectionError, BrokenPipeError) as exc:
        raise EnvConfigError(
            f"an env worker process died while building {env_id!r} (its traceback is above): {exc!r}"
        ) from exc
