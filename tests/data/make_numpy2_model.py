"""Make tests/data/ddqn_numpy2.zip and its golden Q-values: a tiny DDQN saved under numpy 2 (run with Python >= 3.13).

    .venv/bin/python tests/data/make_numpy2_model.py   # .venv is the Python >= 3.13 install

tests/test_portable.py loads it on both install paths (numpy 2 and numpy 1) and checks the Q-values.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch as th

from sb3_mario import DDQN, make_mario_vec_env

HERE = Path(__file__).parent

if __name__ == "__main__":
    assert int(np.__version__.split(".")[0]) >= 2, "run under numpy 2 (Python >= 3.13)"
    env = make_mario_vec_env(n_envs=1, vec_env="dummy", seed=0, screen_size=42, show_buttons=True, frontier_starts=0.5)
    model = DDQN(
        "CnnPolicy", env, buffer_size=200, learning_starts=50, seed=0, device="cpu",
        policy_kwargs={"net_arch": [16], "features_extractor_kwargs": {"features_dim": 32}},
    )  # fmt: skip
    model.learn(120)
    model.save(HERE / "ddqn_numpy2.zip")
    obs = np.random.default_rng(0).integers(0, 256, (3, 4, 42, 42), dtype=np.uint8)
    with th.no_grad():
        q = model.q_net(model.policy.obs_to_tensor(obs)[0]).numpy()
    golden = {"obs_seed": 0, "q_values": q.tolist(), "numpy": np.__version__, "python": sys.version.split()[0]}
    (HERE / "ddqn_numpy2.json").write_text(json.dumps(golden, indent=1) + "\n")
    print("wrote", HERE / "ddqn_numpy2.zip")
