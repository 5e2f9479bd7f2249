"""``stall_steps``: an episode whose furthest x stops growing ends as lost (real emulator, and a scripted env)."""

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from sb3_mario import make_mario_env
from sb3_mario.envs import StallTermination
from sb3_mario.envs.wrappers import STALL_PENALTY
from sb3_mario.errors import EnvConfigError
from sb3_mario.evaluation import protocol_env_kwargs

KWARGS = dict(max_episode_steps=1000, reward_scale=0.1, repeat_jump=True)


def _play(env, seed=3, until_x=420, steps=300):
    """Hop until x >= ``until_x``, then press [right] into the pipe there: (reward, terminated, truncated, info)."""
    _, info = env.reset(seed=seed)
    trace = []
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(1 if info["x_pos"] < until_x else 0)
        trace.append((reward, terminated, truncated, dict(info)))
        if terminated or truncated:
            break
    return trace


def test_a_stall_ends_the_episode_with_a_deaths_penalty_exactly_stall_steps_after_the_last_new_x():
    stalled = _play(make_mario_env(stall_steps=50, **KWARGS))
    plain = _play(make_mario_env(**KWARGS))
    # by hand from the plain run: the last step that set a new furthest x, then 50 steps without one
    best = [t[3]["max_x_pos"] for t in plain]
    last_new = max(i for i in range(1, len(best)) if best[i] > best[i - 1])
    end = last_new + 50
    assert len(plain) > end + 1 and not any(t[1] or t[2] for t in plain[: end + 1])  # plain Mario stands on
    assert len(stalled) == end + 1
    for (r_s, *_, info_s), (r_p, *_, info_p) in zip(stalled[:end], plain[:end], strict=True):
        assert r_s == r_p and info_s["x_pos"] == info_p["x_pos"] and "stalled" not in info_s
    reward, terminated, truncated, info = stalled[end]
    assert (terminated, truncated, info["stalled"], info["is_success"]) == (True, False, True, False)
    assert reward == pytest.approx(plain[end][0] + STALL_PENALTY * 0.1) and STALL_PENALTY == -15.0
    assert info["max_x_pos"] == best[last_new] == best[end]


def test_no_op_starts_do_not_count_and_the_setting_is_saved():
    env = make_mario_env(noop_max=30, stall_steps=10, **KWARGS)
    _, info = env.reset(seed=7)
    assert info["noops"] > 10  # more standing steps than stall_steps, before the agent's first step
    for _ in range(30):  # hopping right makes a new furthest x at least every few steps
        _, _, terminated, truncated, info = env.step(1)
        assert not (terminated or truncated)
    assert env.get_wrapper_attr("mario_env_kwargs")["stall_steps"] == 10


def test_the_protocol_turns_it_off_and_bad_values_are_one_line_errors():
    assert protocol_env_kwargs({"env_id": "SuperMarioBros-1-1-v0", "stall_steps": 50})["stall_steps"] is None
    for bad in (0, 2.5, "50"):
        with pytest.raises(EnvConfigError, match=r"^stall_steps: must be an integer >= 1"):
            make_mario_env(stall_steps=bad)


class _ScriptedX(gymnasium.Env):
    """Reports a scripted ``max_x_pos`` per step, reward 1, and ends (``terminated``) at the script's last step."""

    observation_space = spaces.Box(0, 1, (1,), np.float32)
    action_space = spaces.Discrete(1)

    def __init__(self, xs):
        self.xs = xs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {"max_x_pos": self.xs[0]}

    def step(self, action):
        self.t += 1
        return np.zeros(1, np.float32), 1.0, self.t == len(self.xs) - 1, False, {"max_x_pos": self.xs[self.t]}


def test_counter_restarts_at_each_new_x_and_an_episode_that_ends_anyway_gets_no_penalty():
    env = StallTermination(_ScriptedX([40, 40, 40, 41, 41, 41, 42, 42, 42, 42]), stall_steps=3, penalty=-2.0)
    env.reset()
    steps = [env.step(0) for _ in range(9)]
    rewards = [s[1] for s in steps]
    assert [s[2] for s in steps] == [False] * 8 + [True]
    assert rewards == [1.0] * 9 and not any(s[4].get("stalled") for s in steps)  # 2 stalls, then a new x: never 3
    env = StallTermination(_ScriptedX([40, 41, 41, 41, 41, 41]), stall_steps=3, penalty=-2.0)
    env.reset()
    assert [env.step(0)[1] for _ in range(4)] == [1.0, 1.0, 1.0, -1.0]  # the 3rd step without a new x: 1 - 2
    env = StallTermination(_ScriptedX([40, 41, 41, 41, 41]), stall_steps=3, penalty=-2.0)
    env.reset()
    last = [env.step(0) for _ in range(4)][-1]
    assert last[1:3] == (1.0, True) and "stalled" not in last[4]  # the episode ended by itself on that step
