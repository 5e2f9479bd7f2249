"""Faults during saves: a full disk, a read-only folder. One line each, the last good checkpoint kept, training on."""

import errno
import os
import subprocess
import sys

import pytest
import yaml
from stable_baselines3.common.env_util import make_vec_env

from sb3_mario import DDQN
from sb3_mario.callbacks import AtomicCheckpointCallback

ENV = "SuperMarioBros-1-1-v0"


def _full_disk(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_checkpoint_keeps_the_last_good_one_and_training_goes_on(tmp_path, capsys, monkeypatch):
    model = DDQN("MlpPolicy", make_vec_env("CartPole-v1"), buffer_size=500, learning_starts=32, batch_size=8, device="cpu")
    checkpoints = AtomicCheckpointCallback(save_freq=50, save_path=str(tmp_path), save_replay_buffer=True)
    model.learn(60, callback=checkpoints)
    good = tmp_path / "rl_model_50_steps.zip"
    assert checkpoints.last_good == good and good.is_file()
    latest = (tmp_path / "latest.yml").read_text()
    buffer = (tmp_path / "replay_buffer.pkl").read_bytes()
    # the disk fills up: first the replay buffer's write fails, then the model's
    real_save = model.save_replay_buffer
    monkeypatch.setattr(model, "save_replay_buffer", _full_disk)
    model.learn(50, callback=checkpoints, reset_num_timesteps=False)  # step 100: the buffer cannot be written
    monkeypatch.setattr(model, "save_replay_buffer", real_save)
    monkeypatch.setattr(model, "save", _full_disk)
    model.learn(50, callback=checkpoints, reset_num_timesteps=False)  # step 150: the model cannot be written
    assert model.num_timesteps >= 150  # training went on
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("warning: checkpoint at step 100 not saved: cannot write ")
    assert "replay_buffer.pkl: No space left on device, needs about " in lines[0]
    assert lines[0].endswith(f"MB free; the last good checkpoint is {good}")
    assert "rl_model_150_steps.zip: No space left on device" in lines[1] and lines[1].endswith(str(good))
    # nothing half-written, nothing newer claimed: latest.yml, the buffer and the good checkpoint are as they were
    assert (tmp_path / "latest.yml").read_text() == latest and (tmp_path / "replay_buffer.pkl").read_bytes() == buffer
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.yml", "replay_buffer.pkl", "rl_model_50_steps.zip"]
    assert checkpoints.failures == 2


def _train(log_folder, *args):
    return subprocess.run(
        [
            sys.executable, "-m", "sb3_mario.train", "-f", str(log_folder), "--vec-env", "dummy", "--verbose", "0",
            "--eval-freq", "0", "-params", "buffer_size:400", "learning_starts:64", "batch_size:8", "train_freq:8",
            "env_kwargs:{max_episode_steps: 100}", *map(str, args),
        ],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


def mount_tmpfs(mount, options):
    """Mount a tmpfs at ``mount``; skip where that is not allowed, except under CI, where it must work."""
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs under CI: {made.stderr.decode().strip()}")
        pytest.skip("cannot mount a tmpfs here (needs root)")


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 40 MB tmpfs: room for one 26 MB checkpoint of the 84x84 network, not for two."""
    mount = tmp_path / "tmpfs"
    mount_tmpfs(mount, "size=40m")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_on_a_real_tmpfs(small_tmpfs):
    # the hop set's 84x84 network, whose checkpoint the tmpfs is sized for
    result = _train(small_tmpfs, "-n", 256, "--save-freq", 128, "-conf", "ddqn_hop")
    assert result.returncode == 2, result.stderr[-3000:]
    run = small_tmpfs / "ddqn" / f"{ENV}_1"
    good = run / "checkpoints" / "model_128_steps.zip"
    # (the hop set's autocast_bf16 warning, on CPUs that emulate bfloat16, is not about the disk)
    lines = [line for line in result.stderr.strip().splitlines() if "autocast_bf16" not in line]
    assert lines[0].startswith("warning: checkpoint at step 256 not saved: cannot write ")
    assert "No space left on device, needs about 2" in lines[0] and lines[0].endswith(str(good))
    # the final save fails: exit non-zero, one line naming what was not written and the last good checkpoint
    assert lines[1].startswith(f"error: cannot write {run / (ENV + '.zip')}: No space left on device, needs about 2")
    assert lines[1].endswith(f"; the last good checkpoint is {good}") and len(lines) == 2
    assert yaml.safe_load((run / "checkpoints" / "latest.yml").read_text())["model"] == good.name
    assert DDQN.load(good, device="cpu").num_timesteps == 128  # the last good checkpoint loads
    assert not [p for p in run.rglob("*") if ".tmp-" in p.name]  # no temporaries left filling the disk


def test_read_only_log_folder_is_one_line(tmp_path):
    folder = tmp_path / "ro"
    mount_tmpfs(folder, "ro,size=1m")
    try:
        result = _train(folder, "-n", 64)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr == f"error: cannot write {folder / 'ddqn'}: Read-only file system\n"


def test_a_killed_save_leaves_no_temporary_file_once_the_run_resumes(tmp_path):
    """kill -9 in the middle of writing the replay buffer leaves its temporary file (``finally`` never runs); the next
    start or resume in that run folder removes it, in one line, and keeps the last good buffer."""
    from test_train import TINY, run_cli, train

    assert train(tmp_path, "-n", 128, "--eval-freq", 0, "--save-freq", 64, "--save-replay-buffer", *TINY).returncode == 0
    run = tmp_path / "logs" / "ddqn" / f"{ENV}_1"
    buffer = run / "checkpoints" / "replay_buffer.pkl"
    good = buffer.read_bytes()
    killed_save = (  # the real atomic save, with a model whose buffer write dies half-way (as under kill -9)
        "import os, signal, sys\n"
        "from sb3_mario.callbacks import save_replay_buffer\n"
        "class Model:\n"
        "    def save_replay_buffer(self, path):\n"
        "        open(path, 'wb').write(b'0' * 3_000_000)\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "save_replay_buffer(Model(), sys.argv[1])\n"
    )
    killed = subprocess.run([sys.executable, "-c", killed_save, str(buffer)], capture_output=True)
    assert killed.returncode == -9
    litter = list(buffer.parent.glob(".replay_buffer.tmp-*.pkl"))
    assert len(litter) == 1 and litter[0].stat().st_size == 3_000_000
    assert buffer.read_bytes() == good
    resumed = run_cli(
        "sb3_mario.train", "-i", run, "-n", 64, "--vec-env", "dummy", "--eval-freq", 0, "--verbose", 0, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert resumed.stdout.splitlines()[0] == (f"removed 1 half-written temporary file(s) of a killed save from {run} (3 MB)")
    assert not list(run.rglob(".*.tmp-*"))


KILLED_IN_FIRST_BUFFER_SAVE = """
import os, signal, sys
import sb3_mario.callbacks as callbacks
from sb3_mario._io import atomic_path

def killed(model, path):  # the real atomic save of the first replay buffer, killed half-way (kill -9)
    with atomic_path(path) as tmp:
        open(tmp, "wb").write(b"0" * 3_000_000)
        os.kill(os.getpid(), signal.SIGKILL)

callbacks.save_replay_buffer = killed
from sb3_mario.train import main
sys.exit(main(sys.argv[1:]))
"""


def test_killed_in_the_first_buffer_save_resumes_from_its_model_and_leaves_no_temporary_file(tmp_path):
    """The issue's case: kill -9 during the first replay-buffer save. The checkpoint zip is written, latest.yml is not:
    ``-i RUN`` resumes from that zip with an empty buffer (one line), and a resume from the zip into a new folder
    removes the killed save's temporary file from the old one."""
    from test_train import CLI_ENV, TINY, run_cli

    args = ["-f", tmp_path / "logs", "--vec-env", "dummy", "--verbose", "0", "--eval-freq", 0]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_IN_FIRST_BUFFER_SAVE, "-n", "128", "--save-freq", "64", "--save-replay-buffer"]
        + [str(a) for a in args + TINY],
        capture_output=True,
        text=True,
        env=CLI_ENV,
        timeout=600,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    run = tmp_path / "logs" / "ddqn" / f"{ENV}_1"
    zip_ = run / "checkpoints" / "model_64_steps.zip"
    assert zip_.is_file() and not (run / "checkpoints" / "latest.yml").exists()
    assert [p.stat().st_size for p in run.rglob(".replay_buffer.tmp-*")] == [3_000_000]

    # a resume from the zip, in a folder of its own: the dead writer's temporary file goes, in one line
    branch = run_cli("sb3_mario.train", "-i", zip_, "-n", 32, *args, timeout=600)
    assert branch.returncode == 0, branch.stderr[-2000:]
    lines = branch.stdout.splitlines()
    assert lines[0] == f"removed 1 half-written temporary file(s) of a killed save from {run} (3 MB)"
    assert lines[1] == f"no replay buffer beside {zip_}: resuming with an empty one"
    assert not list(run.rglob(".*.tmp-*"))

    # -i RUN: the newest model is the zip latest.yml never named
    resumed = run_cli("sb3_mario.train", "-i", run, "-n", 32, *args, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert resumed.stdout.splitlines()[0] == f"no replay buffer beside {zip_}: resuming with an empty one"
    assert DDQN.load(run / f"{ENV}.zip").num_timesteps == 64 + 32


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    """A run resuming from another run's model sweeps only what dead writers left: a save in progress (its writer's
    process id in the name, alive) stays."""
    from sb3_mario._io import atomic_path, sweep_temp_files

    with atomic_path(tmp_path / "replay_buffer.pkl") as tmp:
        tmp.write_bytes(b"0" * 1000)
        stray = tmp_path / ".replay_buffer.tmp-999999999-abcdefgh.pkl"  # no such process
        stray.write_bytes(b"0" * 10)
        assert sweep_temp_files(tmp_path, owned=False) == (1, 10)
        assert tmp.is_file() and not stray.exists()
    assert (tmp_path / "replay_buffer.pkl").read_bytes() == b"0" * 1000
