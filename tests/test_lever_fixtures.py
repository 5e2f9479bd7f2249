"""Zips saved with each opt-in lever on, before DDQN's levers moved to their extension points (tests/data/levers/,
made by tests/data/make_lever_models.py on 33973ba): they load with today's code, as train -i and enjoy load them,
and give the same numbers."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch as th

from sb3_mario import DDQN
from sb3_mario.config import saved_class
from sb3_mario.ddqn.experimental import AdvantageLearningDDQN
from sb3_mario.portable import legacy_kwargs
from sb3_mario.runs import read_model_data

LEVERS = Path(__file__).parent / "data" / "levers"
GOLDEN = json.loads((LEVERS / "golden.json").read_text())
NAMES = [name for name in GOLDEN if name != "loss_seed"]


def load(name: str) -> DDQN:
    path = LEVERS / f"{name}.zip"
    return saved_class(read_model_data(path)).load(path, device="cpu")


def fill(model: DDQN) -> None:
    data = np.load(LEVERS / "transitions.npz")
    for i in range(len(data["obs"])):
        model.replay_buffer.add(
            data["obs"][i], data["next_obs"][i], np.array([data["actions"][i]]), np.array([data["rewards"][i]]),
            np.array([data["dones"][i]]), [{}],
        )  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_old_lever_zip_loads_and_matches(name):
    golden = GOLDEN[name]
    model = load(name)
    obs = np.load(LEVERS / "obs.npy")
    with th.no_grad():
        q = model.q_net(model.policy.obs_to_tensor(obs)[0]).numpy()
    np.testing.assert_allclose(q, golden["q_values"], rtol=1e-6, atol=1e-6)
    assert model.predict(obs, deterministic=True)[0].tolist() == golden["greedy"]
    assert model.exploration_rate == pytest.approx(golden["exploration_rate"], abs=1e-12)
    assert model.exploration_timesteps == golden["exploration_timesteps"]
    fill(model)
    np.random.seed(GOLDEN["loss_seed"])
    th.manual_seed(GOLDEN["loss_seed"])
    model.train(gradient_steps=1, batch_size=8)
    assert model.logger.name_to_value["train/loss"] == pytest.approx(golden["loss"], rel=1e-5)
    with th.no_grad():
        after = model.q_net(model.policy.obs_to_tensor(obs)[0]).numpy()
    np.testing.assert_allclose(after, golden["q_values_after_step"], rtol=1e-5, atol=1e-6)


def test_old_lever_zips_keep_their_settings():
    loaded = {name: load(name) for name in NAMES}
    assert loaded["prioritized"].replay_buffer.__class__.__name__ == "PrioritizedFrameStackReplayBuffer"
    assert loaded["prioritized"].replay_buffer.n_steps == 3
    assert loaded["ez_greedy"].exploration.ez_greedy_mu == 2.0 and loaded["plain"].exploration.ez_greedy_mu is None
    assert isinstance(loaded["advantage_learning"], AdvantageLearningDDQN)
    assert loaded["advantage_learning"].advantage_learning == 0.9 and type(loaded["plain"]) is DDQN
    assert loaded["augment_shift"].replay_buffer.augment_shift == 1 and loaded["plain"].replay_buffer.augment_shift == 0
    assert (loaded["linear"].exploration.schedule, loaded["plain"].exploration.schedule) == ("linear", "exponential")
    assert loaded["linear"].exploration_horizon == 150 and loaded["plain"].exploration.decay == 0.99999975
    assert loaded["dueling"].policy.q_net.__class__.__name__ == "DuelingQNetwork"
    assert all(not model.overlap_learning and not model.autocast_bf16 for model in loaded.values())


def test_legacy_kwargs_put_old_attributes_where_they_live_now():
    plain = legacy_kwargs(LEVERS / "plain.zip")
    assert plain["exploration_kwargs"] == {"schedule": "exponential", "decay": 0.99999975, "ez_greedy_mu": None}
    assert plain["learner_kwargs"] == {"overlap": False, "autocast_bf16": False}
    assert "augment_shift" not in plain["replay_buffer_kwargs"]  # 0: SB3's own buffers would refuse the keyword
    assert legacy_kwargs(LEVERS / "augment_shift.zip")["replay_buffer_kwargs"]["augment_shift"] == 1
    assert legacy_kwargs(LEVERS / "linear.zip")["exploration_kwargs"]["schedule"] == "linear"
