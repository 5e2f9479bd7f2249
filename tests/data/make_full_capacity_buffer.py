"""Writes frame_buffer_full_capacity.pkl: a FrameStackReplayBuffer pickled by the version before saves were trimmed
(every array at its capacity), for tests/test_buffer.py.

Run it with that version's package first on the path, e.g. from a checkout of 08f24f2:
``git archive 08f24f2 sb3_mario | tar -x -C /tmp/old && python tests/data/make_full_capacity_buffer.py /tmp/old``.
"""

import sys
from pathlib import Path

import numpy as np

if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(1, str(Path(__file__).parents[1]))
    from stable_baselines3.common.save_util import save_to_pkl
    from test_buffer import FakeStackedEnvs, make_buffer

    buffer = make_buffer(40, n_envs=2)
    envs, record = FakeStackedEnvs(2, [5, 9, 3], [False, True], np.random.default_rng(7)), {}
    for _ in range(13):
        envs.step(buffer, record)
    save_to_pkl(Path(__file__).with_name("frame_buffer_full_capacity.pkl"), buffer)
