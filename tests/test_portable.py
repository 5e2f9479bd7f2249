"""Zips load on both install paths: one saved under numpy 2 (Python >= 3.13) loads under numpy 1 (the legacy backend)
with the same Q-values, and the shipped zip (saved under numpy 1) loads under numpy 2 (tests/test_pretrained.py)."""

import json
from pathlib import Path

import numpy as np
import torch as th

from sb3_mario import DDQN, make_mario_env
from sb3_mario.envs import LEGACY_BACKEND
from sb3_mario.runs import read_model_data

DATA = Path(__file__).parent / "data"


def test_a_zip_saved_under_numpy_2_loads_with_its_q_values_and_spaces():
    golden = json.loads((DATA / "ddqn_numpy2.json").read_text())
    assert int(golden["numpy"].split(".")[0]) == 2  # made by tests/data/make_numpy2_model.py under numpy 2
    model = DDQN.load(DATA / "ddqn_numpy2.zip", device="cpu")
    env = make_mario_env(**{**model.mario_env, "frontier_starts": 0.0})
    assert model.observation_space == env.observation_space and model.action_space == env.action_space
    assert model.mario_env["frontier_starts"] == 0.5 and model.mario_env["show_buttons"] is True
    obs = np.random.default_rng(golden["obs_seed"]).integers(0, 256, (3, 4, 42, 42), dtype=np.uint8)
    with th.no_grad():
        q = model.q_net(model.policy.obs_to_tensor(obs)[0]).numpy()
    np.testing.assert_allclose(q, np.array(golden["q_values"]), rtol=1e-5, atol=1e-6)
    assert read_model_data(DATA / "ddqn_numpy2.zip")["num_timesteps"] == model.num_timesteps == 120
    # and it plays on this path's backend (frontier starts are a training option: on nes-py 8 it plays without them)
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert env.action_space.contains(int(action))
    env.close()
    assert (int(np.__version__.split(".")[0]) < 2) == LEGACY_BACKEND
