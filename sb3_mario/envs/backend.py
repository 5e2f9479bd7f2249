"""One gymnasium API over either gym-super-mario-bros backend.

- Python < 3.13: gym-super-mario-bros 7.4.0 on nes-py 8.2.1 (legacy ``gym`` API: 4-tuple ``step``, ``reset()`` returns
  only the screen, no ``seed=``).
- Python >= 3.13: gym-super-mario-bros 8.x on nes-py 9 (gymnasium API, same classic reward).

Both hand out a *view* of emulator memory that the next frame overwrites, ``close()`` twice raises and stepping after
the episode ended raises. :class:`MarioBackendEnv` fixes all three. The backend env class is built straight from the
backend's registry entry, without ``gym.make``'s extra wrappers, so each emulator frame costs as little as possible.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from dataclasses import dataclass
from typing import Any

import cv2
import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import load_env_creator

from sb3_mario._quiet import silence_gym_notice
from sb3_mario.envs.actions import BUTTON_BITS, DEFAULT_ACTIONS, ActionsSpec, action_bytes, resolve_actions
from sb3_mario.errors import EnvConfigError, EnvStateError
from sb3_mario.params import check_env_kwargs

LEGACY_BACKEND = sys.version_info < (3, 13)
SCREEN_SHAPE = (240, 256, 3)


def _backend_registry() -> dict[str, Any]:
    """The backend's registry entries for Super Mario Bros, keyed by env id."""
    silence_gym_notice()
    importlib.import_module("gym_super_mario_bros")
    registry = importlib.import_module("gym").envs.registry if LEGACY_BACKEND else gymnasium.envs.registry
    return {env_id: spec for env_id, spec in registry.items() if env_id.startswith("SuperMarioBros")}


def backend_env_ids() -> list[str]:
    """Every Super Mario Bros env id the installed backend knows (stages, full game, random stages, lost levels)."""
    return sorted(_backend_registry())


def check_env_id(env_id: str) -> Any:
    """Return the backend registry entry of ``env_id`` or raise :class:`EnvConfigError` naming close matches."""
    registry = _backend_registry()
    env_id = env_id.removeprefix("sb3_mario/")
    if env_id not in registry:
        close = difflib.get_close_matches(env_id, list(registry), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; e.g. SuperMarioBros-1-1-v0 or SuperMarioBros-v0"
        raise EnvConfigError(f"unknown Super Mario Bros env id {env_id!r}{hint}")
    return registry[env_id]


def check_snapshot_support(env_id: str, what: str = "emulator snapshots") -> None:
    """Raise a one-line :class:`EnvConfigError` if ``what`` cannot run on ``env_id`` here, before any emulator starts.

    :param env_id: a Super Mario Bros env id
    :param what: what needs the snapshots, for the message
    """
    spec = check_env_id(env_id)
    if LEGACY_BACKEND:
        # the 1-1 recipe (`make train`) has frontier starts: say how to train here instead
        instead = " (train without them: -conf ddqn_hop, or -params 'env_kwargs:{frontier_starts: 0}')"
        raise EnvConfigError(
            f"{what} need nes-py >= 9's emulator snapshots, installed on Python >= 3.13; this is Python "
            f"{sys.version_info.major}.{sys.version_info.minor} with nes-py 8, which keeps only the reset backup"
            f"{instead if what == 'frontier starts' else ''}"
        )
    if spec.kwargs.get("target") is None:  # full-game and random-stage envs change stage (or emulator) under one
        raise EnvConfigError(f"{what} need a single-stage env id such as SuperMarioBros-1-1-v0, got {spec.id!r}")


def _bgrx_memory(screen: np.ndarray) -> np.ndarray | None:
    """The contiguous BGRx pixels behind nes-py 8's RGB screen view, or ``None`` if the screen is laid out otherwise.

    nes-py 8 exposes the emulator's 32-bit BGRx pixels as ``memory.reshape(H, W, 4)[:, :, ::-1][:, :, 1:]``: a strided
    view that numpy copies ~30x slower than OpenCV converts the contiguous original (540 vs 18 microseconds a frame).
    """
    memory = screen.base
    height, width = SCREEN_SHAPE[:2]
    if (
        not isinstance(memory, np.ndarray)
        or memory.dtype != np.uint8
        or memory.size != height * width * 4
        or not memory.flags.c_contiguous
        or screen.shape != SCREEN_SHAPE
        or screen.strides != (width * 4, 4, -1)
        or screen.__array_interface__["data"][0] != memory.__array_interface__["data"][0] + 2
    ):
        return None
    return memory.reshape(height, width, 4)


def copy_screen(screen: np.ndarray) -> np.ndarray:
    """A contiguous RGB copy of an emulator screen (fast path for nes-py 8's BGRx buffer)."""
    memory = _bgrx_memory(screen)
    return np.array(screen) if memory is None else cv2.cvtColor(memory, cv2.COLOR_BGRA2RGB)


_A_BUTTON = BUTTON_BITS["A"]


def check_sticky_actions(p: Any) -> float:
    """``p`` as a float if it is a probability (sticky actions), else :class:`EnvConfigError`."""
    check_env_kwargs(sticky_actions=p)
    return float(p)


_PLAYER_FLOAT_STATE = 0x001D  # 0: on the ground, 1: jumping, 2: falling off a ledge, 3: sliding down the flagpole
_PLAYER_STATE = 0x000E  # 0x08: normal play (gym-super-mario-bros: 0x06 dead, 0x0B dying, others cut scenes)


@dataclass(frozen=True)
class BackendSnapshot:
    """Everything :class:`MarioBackendEnv` needs to continue from a moment of an episode (:meth:`~MarioBackendEnv.snapshot`).

    The emulator's own state (RAM, CPU, PPU and the screen) is nes-py's opaque snapshot, which lives in this process
    only (it does not pickle, so it cannot cross a subprocess pipe or enter a zip); the rest is the Python-side state
    that nes-py's ``load_state`` does not know of.

    :param env_id: the env the snapshot was taken in (a snapshot restores only into an env of the same id)
    :param emulator: ``NESEnv.dump_state()``
    :param x_position_last: gym-super-mario-bros' reward bookkeeping: the x of the previous frame
    :param time_last: the same for the clock
    :param prev_byte: the agent-side buttons of the previous frame (what sticky actions repeat)
    :param a_frames: frames A has been held (``repeat_jump``)
    :param last_pressed: the byte the game got on the last frame (``show_buttons`` paints it)
    :param episode_over: the episode had ended (stepping raises until ``reset``)
    :param rng_state: the env's ``np_random`` state (sticky draws), if it was asked for
    """

    env_id: str
    emulator: Any
    x_position_last: int
    time_last: int
    prev_byte: int
    a_frames: int
    last_pressed: int
    episode_over: bool
    rng_state: dict[str, Any] | None = None


class MarioBackendEnv(gymnasium.Env[np.ndarray, np.int64]):
    """Raw RGB Super Mario Bros with a discrete action set, behind the gymnasium API.

    :param env_id: a gym-super-mario-bros id, e.g. ``"SuperMarioBros-1-1-v0"`` (the ``sb3_mario/`` prefix is accepted)
    :param actions: an action-set name (``"tutorial"``, ``"right_only"``, ``"simple"``, ``"complex"``)
        or a list of button combos such as ``[["right"], ["right", "A"]]``
    :param render_mode: ``None``, ``"rgb_array"`` or ``"human"`` (needs a display)
    :param repeat_jump: a held A jumps again when Mario lands. The game starts a jump only on a frame where A goes
        down, so an agent that keeps choosing an action with A (frame after frame, as a greedy policy does at a wall)
        never jumps again, and nothing on screen tells it A is still held (``show_buttons`` of
        :func:`~sb3_mario.make_mario_env` paints it). With ``repeat_jump`` the env releases A for one frame when Mario
        stands on the ground (RAM ``0x001D`` = 0) with A held for two frames or more; jumps in the air, their height
        (A held while rising) and every other button are unchanged.
    :param sticky_actions: probability ``p`` in ``[0, 1]`` that, on each emulator frame, the buttons of the previous
        frame are pressed again instead of the chosen ones: the ALE's sticky actions (Machado et al. 2018), which stop a
        greedy agent from replaying one memorised path. The previous frame's byte is the agent-side one (before
        ``repeat_jump`` lets go of A), carries across agent steps and no-op frames, and is 0 (no button) after
        ``reset``; draws come from the env's seeded ``np_random``, one per frame while ``p > 0``. 0 (default) is off.

    :attr:`last_pressed` is the controller byte the game got on the last emulator frame (0 after ``reset``).

    :meth:`snapshot` and :meth:`restore` save and restore a moment of an episode, emulator and Python-side state
    together (nes-py >= 9, so Python >= 3.13, and single-stage ids only: :attr:`supports_snapshots`).

    Action index :attr:`noop_index` (one past the action space) presses no button: no-op starts use it, since action
    sets such as the tutorial's have no ``NOOP``.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 60}  # noqa: RUF012

    def __init__(
        self,
        env_id: str = "SuperMarioBros-1-1-v0",
        actions: ActionsSpec = DEFAULT_ACTIONS,
        render_mode: str | None = None,
        repeat_jump: bool = False,
        sticky_actions: float = 0.0,
    ) -> None:
        if render_mode not in (None, "rgb_array", "human"):
            raise EnvConfigError(f"render_mode must be None, 'rgb_array' or 'human', got {render_mode!r}")
        spec = check_env_id(env_id)
        self.buttons = resolve_actions(actions)
        # one extra index past the action space presses nothing: the button-less no-op of no-op starts
        self._action_bytes = [*action_bytes(self.buttons), 0]
        self.noop_index = len(self.buttons)
        self.env_id = spec.id
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, SCREEN_SHAPE, np.uint8)
        self.action_space = spaces.Discrete(len(self.buttons))
        make_nes: Any = spec.entry_point if callable(spec.entry_point) else load_env_creator(spec.entry_point)
        self._nes = make_nes(**spec.kwargs)
        self.repeat_jump = bool(repeat_jump)
        self._a_frames = 0  # consecutive frames A was held (repeat_jump)
        self.sticky_actions = check_sticky_actions(sticky_actions)
        self._prev_byte = 0  # agent-side buttons of the previous frame (sticky actions)
        self.last_pressed = 0  # the byte the game got on the last frame (after sticky actions and repeat_jump)
        self.pressed_log: list[int] | None = None  # set to a list to record every byte sent to the emulator
        self._snapshots_checked = False
        self._episode_over = True
        self._closed = False

    @property
    def nes(self) -> Any:
        """The backend's own env (nes-py ``NESEnv`` subclass): its ``ram``, ``screen`` and save states."""
        return self._nes

    @property
    def supports_snapshots(self) -> bool:
        """Whether :meth:`snapshot` works here: nes-py 9's ``dump_state`` (Python >= 3.13) on a single-stage id
        (random-stage and full-game envs switch emulators or stages under the snapshot)."""
        return hasattr(self._nes, "dump_state") and bool(getattr(self._nes, "is_single_stage_env", False))

    def check_snapshots(self, what: str = "emulator snapshots") -> None:
        """Raise a one-line :class:`EnvConfigError` saying why ``what`` cannot run here, if it cannot.

        :param what: what needs the snapshots, for the message
        """
        if not self._snapshots_checked:  # once: the check reads the backend's registry
            check_snapshot_support(self.env_id, what)
            self._snapshots_checked = True

    def snapshot(self, include_rng: bool = False) -> BackendSnapshot:
        """This moment of the episode: the emulator plus the Python-side state outside it (the ALE's ``cloneState``).

        :param include_rng: also save ``np_random``'s state, so that the sticky draws after :meth:`restore` repeat
            too (the ALE's ``cloneSystemState``); off, a restored env draws on from wherever its generator is
        """
        self._check_open()
        self.check_snapshots()
        nes = self._nes
        return BackendSnapshot(
            env_id=self.env_id,
            emulator=nes.dump_state(),
            x_position_last=int(nes._x_position_last),
            time_last=int(nes._time_last),
            prev_byte=self._prev_byte,
            a_frames=self._a_frames,
            last_pressed=self.last_pressed,
            episode_over=self._episode_over,
            rng_state=dict(self.np_random.bit_generator.state) if include_rng else None,
        )

    def restore(self, snapshot: BackendSnapshot) -> None:
        """Continue from ``snapshot``.

        :param snapshot: from :meth:`snapshot`, in this env or another env of the same id in this process
        """
        self._check_open()
        self.check_snapshots()
        if not isinstance(snapshot, BackendSnapshot) or snapshot.env_id != self.env_id:
            got = snapshot.env_id if isinstance(snapshot, BackendSnapshot) else type(snapshot).__name__
            raise EnvConfigError(f"a snapshot of {got!r} cannot be restored into {self.env_id!r}")
        nes = self._nes
        nes.load_state(snapshot.emulator)
        # gym-super-mario-bros rewards the change of x and clock since its last frame: without these, the first
        # step after loading rewards the distance from wherever this env was before (e.g. -15 right after a reset)
        nes._x_position_last = snapshot.x_position_last
        nes._time_last = snapshot.time_last
        nes.done = snapshot.episode_over
        self._prev_byte = snapshot.prev_byte
        self._a_frames = snapshot.a_frames
        self.last_pressed = snapshot.last_pressed
        self._episode_over = snapshot.episode_over
        if snapshot.rng_state is not None:
            self.np_random.bit_generator.state = snapshot.rng_state

    def can_snapshot_now(self, x_pos: int, min_time: int = 0) -> bool:
        """Mario is in normal play (alive, not in a cut scene), on the ground, at ``x_pos``, with at least ``min_time``
        on the clock: a moment worth starting an episode from (:class:`~sb3_mario.envs.FrontierStarts`).

        :param x_pos: the x the step's info reported; right after a pipe or an area change gym-super-mario-bros runs
            more frames after computing the info, and the emulator is then elsewhere: no snapshot there
        :param min_time: the least time left on the game clock
        """
        if self._episode_over:
            return False
        ram = self._stage_ram()
        nes = self._nes
        return (
            int(ram[_PLAYER_STATE]) == 0x08
            and int(ram[_PLAYER_FLOAT_STATE]) == 0
            and int(nes._x_position) == x_pos
            and int(nes._time) >= min_time
        )

    def get_action_meanings(self) -> list[str]:
        """Button combos of each discrete action, e.g. ``["right", "right A"]``."""
        return [" ".join(combo) for combo in self.buttons]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self._check_open()
        super().reset(seed=seed)
        if LEGACY_BACKEND:
            screen = self._nes.reset(seed=seed, options=options)
            # nes-py 8 returns no reset info; read it off the stage env (RandomStages wraps one per stage)
            info = getattr(self._nes, "env", self._nes)._get_info()
        else:
            screen, info = self._nes.reset(seed=seed, options=options)
        self._episode_over = False
        self._a_frames = self._prev_byte = self.last_pressed = 0  # no button held or pressed before the first frame
        return copy_screen(screen), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return self.step_frames(action, 1)

    def step_frames(
        self, action: Any, frames: int, max_pool: bool = False
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Hold ``action`` for up to ``frames`` emulator frames, stopping at the episode's end.

        The fast path of :class:`~sb3_mario.envs.MarioFrameSkip`: rewards are summed frame by frame, and only the
        frame(s) returned are copied out of the emulator.

        :param action: index into the action set, or :attr:`noop_index` (no button)
        :param frames: number of frames (>= 1)
        :param max_pool: return the pixel-wise max of the last two frames (if the episode did not end before)
        :return: the gymnasium ``step`` 5-tuple
        """
        if self._episode_over:
            self._check_open()
            raise EnvStateError("step() called after the episode ended (or before reset()): call reset() first")
        chosen = self._action_bytes[action]
        sticky = self.sticky_actions
        draws = self.np_random.random(frames) if sticky > 0 else None
        nes_step = self._nes.step
        log = self.pressed_log
        total_reward = 0.0
        prev = None
        truncated = False
        for i in range(frames):
            byte = self._prev_byte if draws is not None and draws[i] < sticky else chosen
            self._prev_byte = byte
            pressed = byte
            if self.repeat_jump and byte & _A_BUTTON:
                # the game acts on a new A one frame late: a take-off shows in RAM after A was held for 2 frames
                if self._a_frames >= 2 and self._stage_ram()[_PLAYER_FLOAT_STATE] == 0:
                    pressed = byte & ~_A_BUTTON  # let go of A for one frame on the ground: the next frame jumps
                self._a_frames = self._a_frames + 1 if pressed & _A_BUTTON else 0
            else:
                self._a_frames = 0
            self.last_pressed = pressed
            if log is not None:
                log.append(pressed)
            if LEGACY_BACKEND:
                screen, reward, terminated, info = nes_step(pressed)
            else:
                screen, reward, terminated, truncated, info = nes_step(pressed)
            total_reward += reward
            if terminated or truncated:
                break
            if max_pool and i == frames - 2:
                prev = copy_screen(screen)
        self._episode_over = terminated or truncated
        obs = copy_screen(screen)
        if prev is not None and not self._episode_over:
            np.maximum(prev, obs, out=obs)
        return obs, total_reward, terminated, truncated, info

    def _stage_ram(self) -> np.ndarray:
        """RAM of the running stage's emulator (``RandomStages`` envs wrap one env per stage)."""
        return getattr(self._nes, "env", self._nes).unwrapped.ram

    def render(self) -> np.ndarray | None:
        self._check_open()
        if self.render_mode == "rgb_array":
            return np.array(self._nes.screen)
        if self.render_mode == "human":
            self._nes.render(mode="human") if LEGACY_BACKEND else self._nes.render()
        return None

    def close(self) -> None:
        """Release the emulator; calling it again is a no-op."""
        if not self._closed:
            self._closed = True
            self._episode_over = True  # step() now raises instead of reaching the released emulator
            self._nes.close()

    def _check_open(self) -> None:
        if self._closed:
            raise EnvStateError("the environment is closed")
