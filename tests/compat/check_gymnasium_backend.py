"""Exercise the env pipeline on the gymnasium backend (gym-super-mario-bros 8.x, nes-py 9; Python >= 3.13).

Needs only gym-super-mario-bros 8, gymnasium, opencv-python-headless and numpy: torch and SB3 are not imported (the
sb3_mario package __init__ is bypassed), so a light Python 3.13 venv can run it. Run by tests/test_compat.py (slow).

Usage: python tests/compat/check_gymnasium_backend.py   (prints "ok" and exits 0 on success)
"""

import importlib
import json
import pathlib
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parents[2]
for name in ("sb3_mario", "sb3_mario.envs"):  # namespace stubs: import submodules without the package __init__s
    module = types.ModuleType(name)
    module.__path__ = [str(ROOT / name.replace(".", "/"))]
    sys.modules[name] = module

backend = importlib.import_module("sb3_mario.envs.backend")
wrappers = importlib.import_module("sb3_mario.envs.wrappers")
import numpy as np  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402
from gymnasium.wrappers import FrameStackObservation  # noqa: E402

assert backend.LEGACY_BACKEND is (sys.version_info < (3, 13))
ids = backend.backend_env_ids()
assert "SuperMarioBros-1-1-v0" in ids and "SuperMarioBrosRandomStages-v0" in ids, ids[:5]

raw = backend.MarioBackendEnv("SuperMarioBros-1-1-v0", "tutorial")
check_env(raw, skip_render_check=True)
frame, info = raw.reset(seed=0)
assert frame.shape == (240, 256, 3) and frame.dtype == np.uint8 and "x_pos" in info
kept = frame.copy()
for _ in range(20):
    raw.step(1)
np.testing.assert_array_equal(frame, kept)  # frames are copies
raw.close()
raw.close()

env = FrameStackObservation(
    wrappers.GrayResizeObservation(
        wrappers.MarioFrameSkip(backend.MarioBackendEnv("SuperMarioBros-1-1-v0", "tutorial"), skip=4)
    ),
    stack_size=4,
)
env = wrappers.MarioEpisodeStats(env)
obs, _ = env.reset(seed=0)
assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
run = json.loads((ROOT / "tests" / "data" / "flag_run_1-1.json").read_text())
for action in run["steps"]:
    obs, reward, terminated, truncated, info = env.step(action)
    if terminated or truncated:
        break
assert info["flag_get"] and info["is_success"], info  # same emulator, same recorded run reaches the flag
env.close()
print("ok", sys.version.split()[0])
