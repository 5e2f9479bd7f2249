"""The Mario env pipeline on the real emulator: API, preprocessing, determinism, the flag, vec envs, bad input."""

import itertools
import json
import pathlib
import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sb3_mario
from sb3_mario import make_mario_env, make_mario_vec_env
from sb3_mario.envs import (
    BUTTON_BITS,
    LEGACY_BACKEND,
    MARIO_INFO_KEYS,
    ButtonsObservation,
    GrayResizeObservation,
    MarioBackendEnv,
    MarioFrameSkip,
    play_env_kwargs,
    resolve_actions,
)
from sb3_mario.errors import EnvConfigError, EnvStateError

FLAG_RUN = pathlib.Path(__file__).parent / "data" / "flag_run_1-1.json"


def test_import_prints_nothing():
    out = subprocess.run([sys.executable, "-c", "import sb3_mario"], capture_output=True, text=True, check=True)
    assert out.stdout == "" and out.stderr == ""


def test_sb3_and_gymnasium_check_env_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = make_mario_env()
        sb3_check_env(env)
        gym_check_env(env.unwrapped, skip_render_check=True)
        raw = MarioBackendEnv()
        gym_check_env(raw, skip_render_check=True)
        sb3_check_env(raw)
    env.close()
    raw.close()


def test_observation_shape_dtype_and_stability():
    env = make_mario_env()
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    obs, info = env.reset(seed=1)
    assert obs.dtype == np.uint8 and obs.shape == (4, 84, 84)
    assert set(MARIO_INFO_KEYS) - {"max_x_pos"} <= set(info)
    kept = obs
    snapshot = obs.copy()
    for _ in range(5):
        obs, *_ = env.step(1)
    np.testing.assert_array_equal(kept, snapshot)  # not overwritten by later steps
    assert not np.array_equal(obs, snapshot)  # ...while the screen did change
    # the stack is channel-first and shifts by one frame per step
    nxt, *_ = env.step(1)
    np.testing.assert_array_equal(nxt[:3], obs[1:])
    env.close()


def test_backend_frames_are_copies():
    env = MarioBackendEnv()
    frame, _ = env.reset()
    snapshot = frame.copy()
    for _ in range(30):
        env.step(1)
    np.testing.assert_array_equal(frame, snapshot)
    env.close()


def test_same_seed_same_actions_identical():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, size=60)
    runs = []
    for _ in range(2):
        env = make_mario_env(seed=7)
        obs, _ = env.reset(seed=7)
        frames, rewards = [obs], []
        for a in actions:
            obs, r, term, trunc, _ = env.step(int(a))
            frames.append(obs)
            rewards.append(r)
            if term or trunc:
                obs, _ = env.reset()
        runs.append((np.stack(frames), rewards))
        env.close()
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_frame_skip_reward_equals_per_frame_sum():
    skip = 4
    single = MarioBackendEnv()
    skipped = MarioFrameSkip(MarioBackendEnv(), skip=skip)
    single.reset(seed=0)
    skipped.reset(seed=0)
    rng = np.random.default_rng(3)
    for _ in range(80):
        a = int(rng.integers(0, 2))
        total, done = 0.0, False
        for _ in range(skip):
            _, r, term, trunc, info1 = single.step(a)
            total += r
            if term or trunc:
                done = True
                break
        _, r4, term4, trunc4, info4 = skipped.step(a)
        assert r4 == total
        assert info4["x_pos"] == info1["x_pos"] and (term4 or trunc4) == done
        if done:
            single.reset()
            skipped.reset()
    single.close()
    skipped.close()


def test_max_pool_is_max_of_last_two_frames():
    plain = MarioBackendEnv()
    pooled = MarioFrameSkip(MarioBackendEnv(), skip=4, max_pool=True)
    plain.reset()
    pooled.reset()
    for _ in range(20):
        frames = [plain.step(1)[0] for _ in range(4)]
        obs, *_ = pooled.step(1)
        np.testing.assert_array_equal(obs, np.maximum(frames[-2], frames[-1]))


def test_flag_reachable_through_full_wrapper_stack():
    data = json.loads(FLAG_RUN.read_text())
    env = make_mario_env(data["env_id"], actions=data["actions"], frame_skip=data["frame_skip"])
    env.reset(seed=0)
    info: dict = {}
    terminated = False
    for i, a in enumerate(data["steps"]):
        _, _, terminated, truncated, info = env.step(a)
        if terminated or truncated:
            break
    assert terminated and i == len(data["steps"]) - 1
    assert bool(info["flag_get"]) is True
    assert info["x_pos"] > 3100 and info["max_x_pos"] >= info["x_pos"]
    env.close()


def test_flag_reward_arrives_once_on_the_flag_step_scaled_with_the_rest():
    """The recorded flag run, replayed with and without ``flag_reward``: the rewards differ on the last step only
    (the flag, terminated), by the bonus times ``reward_scale``."""
    data = json.loads(FLAG_RUN.read_text())
    rewards = {}
    for bonus in (0.0, 50.0):
        env = make_mario_env(
            data["env_id"], actions=data["actions"], frame_skip=data["frame_skip"], reward_scale=0.1, flag_reward=bonus
        )
        env.reset(seed=0)
        rewards[bonus], flags = [], []
        for a in data["steps"]:
            _, reward, terminated, truncated, info = env.step(a)
            rewards[bonus].append(reward)
            flags.append(bool(info["flag_get"]))
            if terminated or truncated:
                break
        assert terminated and not truncated and flags == [False] * (len(flags) - 1) + [True]
        assert env.get_wrapper_attr("mario_env_kwargs")["flag_reward"] == bonus  # saved with a model's env spec
        env.close()
    difference = np.array(rewards[50.0]) - np.array(rewards[0.0])
    np.testing.assert_allclose(difference, [0.0] * (len(difference) - 1) + [5.0], atol=1e-9)
    assert play_env_kwargs({"flag_reward": 50.0, "reward_scale": 0.1})["flag_reward"] == 0.0  # evaluation: game's


def test_time_limit_truncates():
    env = make_mario_env(max_episode_steps=5)
    env.reset()
    for _ in range(4):
        assert env.step(0)[3] is False
    _, _, terminated, truncated, _ = env.step(0)
    assert truncated is True and terminated is False
    env.close()


def test_screen_size_and_stack_configurable():
    env = make_mario_env(screen_size=(64, 72), frame_stack=2, frame_skip=2, actions="simple")
    obs, _ = env.reset()
    assert obs.shape == (2, 64, 72) and env.action_space.n == 7
    env.close()


def test_action_sets():
    assert resolve_actions("tutorial") == [["right"], ["right", "A"]]
    assert len(resolve_actions("right_only")) == 5
    assert len(resolve_actions("complex")) == 12
    assert resolve_actions([["RIGHT", "a"], ["b"]]) == [["right", "A"], ["B"]]
    env = MarioBackendEnv(actions=[["left"], ["right", "B"]])
    assert env.get_action_meanings() == ["left", "right B"]
    env.close()


def test_gymnasium_registration():
    env = gymnasium.make("sb3_mario/SuperMarioBros-1-1-v0", frame_stack=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 84, 84)
    env.close()
    ids = sb3_mario.register_mario_envs()
    for expected in ("SuperMarioBros-8-4-v3", "SuperMarioBros-v0", "SuperMarioBrosRandomStages-v1", "SuperMarioBros2-v0"):
        assert f"sb3_mario/{expected}" in ids
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "v0 is out of date" deprecation: -vN are ROM modes
        gymnasium.make("sb3_mario/SuperMarioBros-v0").close()


def test_random_stages_seeded():
    # one env (building one starts an emulator per stage, 32, and plays each one's start screen: seconds); the second
    # pass over the seeds comes after the first one's draws, so the stages follow from the seeds, not the env's history
    env = make_mario_env("SuperMarioBrosRandomStages-v0")
    worlds = []
    for _ in range(2):
        seq = []
        for s in range(4):
            _, info = env.reset(seed=s)
            seq.append((info["world"], info["stage"]))
        worlds.append(seq)
    env.close()
    assert worlds[0] == worlds[1]


def test_dummy_vec_env_monitor_reports_mario_keys(tmp_path):
    venv = make_mario_vec_env(n_envs=1, vec_env="dummy", seed=0, monitor_dir=str(tmp_path), max_episode_steps=20)
    venv.reset()
    episode = None
    for _ in range(25):
        _, _, dones, infos = venv.step(np.array([0]))
        if dones[0]:
            episode = infos[0]["episode"]
            break
    assert episode is not None and episode["l"] == 20
    for key in MARIO_INFO_KEYS:
        assert key in episode
    venv.close()
    header = next(tmp_path.glob("*.monitor.csv")).read_text().splitlines()[1]
    assert header.startswith("r,l,t,x_pos,max_x_pos,flag_get")


def test_subproc_vec_env_two_envs():
    venv = make_mario_vec_env(n_envs=2, vec_env="subproc", seed=0)
    obs = venv.reset()
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    for _ in range(10):
        obs, rewards, dones, infos = venv.step(np.array([1, 0]))
    assert infos[0]["y_pos"] != infos[1]["y_pos"]  # env 0 jumps, env 1 walks: separate emulators
    assert not np.array_equal(obs[0], obs[1])
    venv.close()


def test_subproc_workers_print_nothing():
    script = "from sb3_mario import make_mario_vec_env; make_mario_vec_env(n_envs=2, vec_env='subproc').close()"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stderr == "" and out.stdout == ""


def test_subproc_worker_build_failure_is_clear():
    with pytest.raises(EnvConfigError, match="worker"):
        make_mario_vec_env(n_envs=2, vec_env="subproc", screen_size=3)


def test_close_twice_and_step_after_done():
    env = make_mario_env(max_episode_steps=2)
    env.reset()
    env.step(0)
    env.step(0)
    raw = MarioBackendEnv()
    raw.reset()
    while not raw.step(0)[2]:  # walk into the first Goomba
        pass
    with pytest.raises(EnvStateError, match="reset"):
        raw.step(0)
    raw.close()
    raw.close()
    with pytest.raises(EnvStateError, match="closed"):
        raw.reset()
    env.close()
    env.close()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"env_id": "SuperMarioBros-1-5-v0"}, "did you mean SuperMarioBros-1-"),
        ({"env_id": "Pong-v5"}, "unknown Super Mario Bros env id"),
        ({"actions": "jumpy"}, "valid names: tutorial, right_only, simple, complex"),
        ({"actions": [["right", "jump"]]}, "valid buttons: right, left, down, up, start, select, B, A, NOOP"),
        ({"actions": []}, "non-empty"),
        ({"frame_skip": 0}, "frame_skip"),
        ({"screen_size": 2}, "screen_size"),
        ({"frame_stack": 0}, "frame_stack"),
        ({"max_episode_steps": -1}, "max_episode_steps"),
        ({"noop_max": -2}, "noop_max: must be an integer >= 0, got -2"),
        ({"reward_scale": 0}, r"reward_scale: must be a number in \(0.0, 1000000.0\], got 0"),
        ({"render_mode": "window"}, "render_mode"),
    ],
)
def test_bad_env_input(kwargs, match):
    with pytest.raises(EnvConfigError, match=match):
        make_mario_env(**kwargs)


@pytest.mark.parametrize("kwargs, match", [({"n_envs": 0}, "n_envs"), ({"vec_env": "ray"}, "vec_env")])
def test_bad_vec_env_input(kwargs, match):
    with pytest.raises(EnvConfigError, match=match):
        make_mario_vec_env(**kwargs)


def test_fast_screen_copy_matches_numpy_copy():
    from sb3_mario.envs.backend import _bgrx_memory, copy_screen

    env = MarioBackendEnv()
    env.reset()
    for _ in range(50):
        env.step(1)
    screen = env.nes.screen
    if LEGACY_BACKEND:
        assert _bgrx_memory(screen) is not None  # the fast path is taken on nes-py 8
    fast = copy_screen(screen)
    assert fast.flags.c_contiguous and not np.shares_memory(fast, screen)
    np.testing.assert_array_equal(fast, np.array(screen))
    env.close()


def test_step_after_close_is_an_error_not_a_crash():
    env = MarioBackendEnv()
    env.reset()
    env.step(0)
    env.close()
    with pytest.raises(EnvStateError, match="closed"):
        env.step(0)


def test_noop_start_is_seeded_and_equals_stepping_noops_by_hand():
    env = make_mario_env(actions="right_only", noop_max=30)
    counts = {seed: env.reset(seed=seed)[1]["noops"] for seed in range(12)}
    assert len(set(counts.values())) > 3 and all(0 <= n <= 30 for n in counts.values())
    assert env.reset(seed=5)[1]["noops"] == counts[5]  # the same seed, the same start
    obs, info = env.reset(seed=5)
    plain = make_mario_env(actions="right_only")
    expected, _ = plain.reset(seed=5)
    noop = plain.unwrapped.get_action_meanings().index("NOOP")
    for _ in range(counts[5]):
        expected, *_ = plain.step(noop)
    np.testing.assert_array_equal(obs, expected)
    # the tutorial's set has no NOOP: its no-op is the backend's button-less index, one past the action space
    assert make_mario_env(noop_max=3).noop_action == 2
    for e in (env, plain):
        e.close()


def test_reward_scale_multiplies_the_frame_summed_reward():
    scaled, plain = make_mario_env(reward_scale=0.1), make_mario_env()
    scaled.reset(seed=0)
    plain.reset(seed=0)
    rewards = [(scaled.step(1)[1], plain.step(1)[1]) for _ in range(30)]
    assert max(r for _, r in rewards) > 0  # Mario moved: there was something to scale
    for r_scaled, r_plain in rewards:
        assert r_scaled == pytest.approx(0.1 * r_plain)
    scaled.close()
    plain.close()


def _takeoffs(env, steps):
    """Stand, then hold action 1 for ``steps`` frames: Mario's heights, his standing height, the take-off frames."""
    env.reset(seed=0)
    for _ in range(10):
        ground = int(env.step(0)[4]["y_pos"])
    heights = [int(env.step(1)[4]["y_pos"]) for _ in range(steps)]
    takeoffs = [t for t in range(steps) if (heights[t - 1] if t else ground) == ground < heights[t]]
    return heights, ground, takeoffs


def test_repeat_jump_jumps_again_when_a_is_held():
    plain = MarioBackendEnv(actions=[["NOOP"], ["A"]])
    repeat = MarioBackendEnv(actions=[["NOOP"], ["A"]], repeat_jump=True)
    plain_heights, ground, plain_takeoffs = _takeoffs(plain, 150)
    repeat_heights, _, repeat_takeoffs = _takeoffs(repeat, 150)
    # the game starts a jump only when A goes down: holding it gives one jump, with repeat_jump one per landing
    assert len(plain_takeoffs) == 1 and len(repeat_takeoffs) >= 3
    # the first jump is the full-height jump of a held A, frame for frame
    landing = plain_heights.index(ground, plain_takeoffs[0])
    assert landing > 30
    assert repeat_heights[: landing + 1] == plain_heights[: landing + 1]
    assert max(repeat_heights) == max(plain_heights) > ground + 50
    # and every later jump is that same full jump
    period = repeat_takeoffs[2] - repeat_takeoffs[1]
    assert (
        repeat_heights[repeat_takeoffs[1] : repeat_takeoffs[1] + period]
        == repeat_heights[repeat_takeoffs[2] : repeat_takeoffs[2] + period]
    )
    # at agent level (frame skip 4): choosing [right, A] step after step keeps Mario hopping
    agent = make_mario_env(repeat_jump=True, seed=0)
    y = [int(agent.step(1)[4]["y_pos"]) for _ in range(60)]
    assert sum(1 for a, b in itertools.pairwise(y) if a == min(y) < b) >= 3
    for env in (plain, repeat, agent):
        env.close()


def _sticky_trace(p, actions, repeat_jump=False, seed=7):
    env = MarioBackendEnv(actions=[["NOOP"], ["right"], ["right", "A"]], sticky_actions=p, repeat_jump=repeat_jump)
    env.reset(seed=seed)
    env.pressed_log = []
    for action in actions:
        env.step_frames(action, 4)
    trace = env.pressed_log
    env.close()
    return trace


def test_sticky_actions_trace_matches_hand_computed_bytes():
    right, right_a = 0x80, 0x81  # nes-py button bits: right 128, A 1
    # p = 0 is off: the chosen bytes, 4 frames a step
    assert _sticky_trace(0.0, [1, 2, 0]) == [right] * 4 + [right_a] * 4 + [0] * 4
    # p = 1 always repeats the previous frame's byte, which is 0 (no button) after reset
    assert _sticky_trace(1.0, [1, 2, 1]) == [0] * 12
    # p = 0.5, seed 7: one draw per frame from the env's generator, as gymnasium seeds it
    draws = gymnasium.utils.seeding.np_random(7)[0].random(12)
    assert draws.round(3).tolist() == [
        0.625, 0.897, 0.776, 0.225, 0.3, 0.874, 0.005, 0.821, 0.797, 0.468, 0.303, 0.278
    ]  # fmt: skip
    # frame by frame: where the draw < 0.5 (frames 3, 4, 6, 9, 10, 11) the previous frame's byte is pressed again
    expected = [
        right, right, right, right,  # step 1 (right): frame 3 repeats frame 2's right
        right, right_a, right_a, right_a,  # step 2 ([right, A]): frame 4 repeats right, so A comes one frame late
        0, 0, 0, 0,  # step 3 (no button): frame 8 takes it; frames 9-11 repeat it
    ]  # fmt: skip
    assert _sticky_trace(0.5, [1, 2, 0]) == expected
    # the previous byte carries across steps: with p = 1 after a plain step the chosen byte never shows
    env = MarioBackendEnv(actions=[["NOOP"], ["right"], ["right", "A"]], sticky_actions=0.0)
    env.reset(seed=0)
    env.step_frames(1, 4)
    env.sticky_actions, env.pressed_log = 1.0, []
    env.step_frames(2, 4)
    assert env.pressed_log == [right] * 4
    env.close()
    # the same seed gives the same trace; another seed another one
    assert _sticky_trace(0.25, [2] * 30, seed=3) == _sticky_trace(0.25, [2] * 30, seed=3)
    assert _sticky_trace(0.25, [1, 2] * 30, seed=3) != _sticky_trace(0.25, [1, 2] * 30, seed=4)


def test_sticky_actions_then_repeat_jump_per_frame():
    # repeat_jump acts on whatever byte is pressed: with p = 0 the bytes of a held [right, A] are those of
    # repeat_jump alone, and with sticky actions every pressed byte is the agent-side byte or that byte less A
    alone = _sticky_trace(0.0, [2] * 40, repeat_jump=True)
    assert 0x80 in alone and alone[0] == 0x81  # A let go of on the ground, then pressed again
    sticky = _sticky_trace(0.5, [1, 2] * 20, repeat_jump=True)
    agent_side = _sticky_trace(0.5, [1, 2] * 20, repeat_jump=False)
    assert len(sticky) == len(agent_side) == 160
    assert all(s in (a, a & ~0x01) for s, a in zip(sticky, agent_side, strict=True))


def _cells(frame):
    """The 8 button cells of a show_buttons frame (4x4 pixels each at 84x84): 1 lit, 0 dark, None otherwise."""
    strip = frame[:4, :32].reshape(4, 8, 4).transpose(1, 0, 2).reshape(8, 16)
    return [1 if (c == 255).all() else 0 if (c == 0).all() else None for c in strip]


def test_show_buttons_paints_the_byte_of_the_last_frame():
    # 2 frames a step and sticky p = 0.5: the last frame's byte is often not the chosen one (13 of these 100 steps)
    settings = {"frame_skip": 2, "sticky_actions": 0.5, "repeat_jump": True, "noop_max": 30}
    shown = make_mario_env(show_buttons=True, **settings)
    plain = make_mario_env(**settings)
    assert shown.observation_space == plain.observation_space
    obs, _ = shown.reset(seed=5)
    plain_obs, _ = plain.reset(seed=5)
    assert all(_cells(frame) == [0] * 8 for frame in obs)  # no button after reset and the no-ops
    shown.unwrapped.pressed_log = []
    rng = np.random.default_rng(0)
    for t in range(100):
        action = int(rng.integers(2))
        obs, _, terminated, truncated, _ = shown.step(action)
        plain_obs, *_ = plain.step(action)
        byte = shown.unwrapped.pressed_log[-1]  # what the game got on the step's last frame
        if terminated or truncated:  # a death at the first Goomba: the last frame's byte, then dark again
            assert _cells(obs[-1]) == [(byte >> (7 - i)) & 1 for i in range(8)]
            obs, _ = shown.reset(seed=t)
            plain_obs, _ = plain.reset(seed=t)
            byte = 0
        assert _cells(obs[-1]) == [(byte >> (7 - i)) & 1 for i in range(8)], t  # right ... A, BUTTON_BITS order
        # only the blank strip above the HUD changes: the same emulator run, frame for frame
        assert (obs[:, 4:] == plain_obs[:, 4:]).all() and (obs[:, :4, 32:] == plain_obs[:, :4, 32:]).all()
        assert (plain_obs[-1, :4] == plain_obs[-1, 0, 0]).all()
    # without repeat_jump a held [right, A] keeps A lit: what the network needs to see to let go of it
    held = make_mario_env(show_buttons=True, seed=0)
    for action in (0, 1, 1, 1):
        obs, *_ = held.step(action)
    assert [_cells(frame) for frame in obs] == [[1, 0, 0, 0, 0, 0, 0, 0]] + [[1, 0, 0, 0, 0, 0, 0, 1]] * 3
    assert held.get_wrapper_attr("mario_env_kwargs")["show_buttons"] is True
    for env in (shown, plain, held):
        env.close()


@pytest.mark.parametrize(("size", "cell"), [(84, 4), (8, 1), ((36, 100), 1), ((100, 36), 2), ((63, 200), 3)])
def test_show_buttons_lights_one_cell_per_button_at_any_size(size, cell):
    backend = MarioBackendEnv()
    env = ButtonsObservation(GrayResizeObservation(MarioFrameSkip(backend), screen_size=size))
    assert env.cell == cell and env.observation_space == env.env.observation_space
    blank = np.full(env.observation_space.shape, 140, np.uint8)
    for i, name in enumerate(["right", "left", "down", "up", "start", "select", "B", "A"]):
        backend.last_pressed = BUTTON_BITS[name]
        painted = env.observation(blank)
        expected = blank.copy()
        expected[:cell, : 8 * cell] = 0
        expected[:cell, i * cell : (i + 1) * cell] = 255  # that button's cell only, left to right
        assert (painted == expected).all(), name
    assert (blank == 140).all()  # the frame it was given is left as it was
    with pytest.raises(EnvConfigError, match=r"^ButtonsObservation paints"):
        ButtonsObservation(MarioFrameSkip(backend))  # RGB frames
    backend.close()


def test_noop_starts_press_no_button_and_carry_into_sticky_actions():
    env = make_mario_env(noop_max=30, sticky_actions=1.0)  # the tutorial set: no NOOP action
    backend = env.unwrapped
    backend.pressed_log = []
    _, info = env.reset(seed=11)
    assert info["noops"] > 0 and backend.pressed_log == [0] * (4 * info["noops"])
    env.step(1)  # p = 1: the no-op's byte (none) carries on
    assert backend.pressed_log[-4:] == [0] * 4
    assert env.noop_action == backend.noop_index == 2
    env.close()


def test_sticky_actions_option_everywhere():
    env = gymnasium.make("sb3_mario/SuperMarioBros-1-1-v0", sticky_actions=0.25)
    assert env.unwrapped.sticky_actions == 0.25
    env.close()
    with pytest.raises(EnvConfigError, match=r"sticky_actions: must be a number in \[0.0, 1.0\], got 1.5"):
        make_mario_env(sticky_actions=1.5)
    from sb3_mario.config import load_hyperparams
    from sb3_mario.errors import ConfigError

    hp = load_hyperparams("ddqn", "SuperMarioBros-1-1-v0", overrides={"env_kwargs": {"sticky_actions": 0.1}})
    assert hp["env_kwargs"]["sticky_actions"] == 0.1
    with pytest.raises(ConfigError, match=r"env_kwargs\.sticky_actions"):
        load_hyperparams("ddqn", "SuperMarioBros-1-1-v0", overrides={"env_kwargs": {"sticky_actions": -0.1}})


def test_frame_skip_has_one_loop_the_backends():
    with pytest.raises(EnvConfigError, match="MarioFrameSkip wraps a MarioBackendEnv directly, got TimeLimit"):
        MarioFrameSkip(gymnasium.wrappers.TimeLimit(MarioBackendEnv(), 10), skip=4)
