"""``python -m sb3_mario.train --algo ddqn``: train a Mario agent with rl-zoo's flags, and never lose the work.

A run writes ``<log-folder>/<algo>/<env>_<n>/``: the final model ``<env>.zip``, ``best_model.zip`` and
``evaluations.npz`` (SB3's EvalCallback), ``checkpoints/`` (models, the newest replay buffer, ``latest.yml``),
``config.yml`` (the resolved hyperparameters), ``args.yml``, ``command.txt``, Monitor CSVs and TensorBoard events.
Ctrl-C or SIGTERM stops at the next step and saves; ``-i`` resumes from a zip or a run folder.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import SubprocVecEnv, VecEnv

from sb3_mario._io import atomic_write_text
from sb3_mario.callbacks import (
    REPLAY_BUFFER_NAME,
    AtomicCheckpointCallback,
    MarioEvalCallback,
    MarioMetricsCallback,
    SaveBestModel,
    StopOnRequest,
    save_model,
    save_replay_buffer,
)
from sb3_mario.config import ALGOS, build_kwargs, load_hyperparams, parse_overrides
from sb3_mario.envs import make_mario_vec_env
from sb3_mario.envs.backend import check_env_id
from sb3_mario.errors import ConfigError, Sb3MarioError
from sb3_mario.runs import CHECKPOINT_DIR, read_model_data, resolve_model_path, run_folder_name


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sb3_mario.train",
        description="Train DDQN (or SB3's DQN) on Super Mario Bros. Flags follow rl-baselines3-zoo.",
    )
    p.add_argument("--algo", default="ddqn", choices=sorted(ALGOS), help="algorithm (default: %(default)s)")
    p.add_argument("--env", default="SuperMarioBros-1-1-v0", help="gym-super-mario-bros env id (default: %(default)s)")
    p.add_argument("-n", "--n-timesteps", type=positive_int, help="env transitions to train (default: the YAML's)")
    p.add_argument("-conf", "--conf-file", help="hyperparameter YAML, or a packaged set: ddqn, dqn, ddqn_tutorial")
    p.add_argument(
        "-params",
        "--hyperparams",
        nargs="+",
        default=[],
        metavar="KEY:VALUE",
        help="override hyperparameters, each value read as YAML, e.g. gamma:0.99 train_freq:4",
    )
    p.add_argument(
        "--eval-freq", type=int, default=25_000, help="evaluate every N env transitions; <= 0 disables (default: 25000)"
    )
    p.add_argument("--eval-episodes", type=positive_int, default=5, help="episodes per evaluation (default: 5)")
    p.add_argument(
        "--eval-noop-max",
        type=non_negative_int,
        default=30,
        help="evaluation episodes start with 0..N seeded no-ops, so greedy runs differ (default: 30)",
    )
    p.add_argument(
        "--save-freq", type=int, default=50_000, help="checkpoint every N env transitions; <= 0 disables (default: 50000)"
    )
    p.add_argument(
        "--save-replay-buffer",
        action="store_true",
        help="also checkpoint the replay buffer (only the newest is kept) and save it at the end",
    )
    p.add_argument("-i", "--trained-agent", help="resume from a model zip or a run folder")
    p.add_argument("-f", "--log-folder", default="logs", help="root folder of runs (default: %(default)s)")
    p.add_argument("-tb", "--tensorboard-log", default=None, help="TensorBoard folder (default: the run folder)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda (default: %(default)s)")
    p.add_argument("--n-envs", type=positive_int, help="number of envs (default: the YAML's n_envs)")
    p.add_argument(
        "--vec-env",
        default="subproc",
        choices=["dummy", "subproc"],
        help="dummy: envs in this process; subproc: one process per env, stepping beside the learner (default: subproc)",
    )
    p.add_argument("-P", "--progress", action="store_true", help="show a progress bar with steps/s and ETA")
    p.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2], help="0 quiet, 1 info, 2 debug")
    p.add_argument(
        "-optimize",
        "--optimize-hyperparameters",
        action="store_true",
        help="run an Optuna search instead (same as python -m sb3_mario.tune; see its --help)",
    )
    return p


# -params keys that are not model attributes, and model settings a resumed model cannot change
RUN_ONLY_KEYS = {"n_timesteps", "n_envs", "env_kwargs", "policy"}
FIXED_ON_RESUME = {
    "buffer_size",
    "replay_buffer_class",
    "replay_buffer_kwargs",
    "optimize_memory_usage",
    "policy_kwargs",
    "n_steps",
}
ENV_FIXED_ON_RESUME = {"actions", "screen_size", "frame_stack"}  # the model's observation and action spaces


class Run:
    """One training run: folder, config, envs, model and callbacks (see the module docstring)."""

    def __init__(self, args: argparse.Namespace, argv: list[str]) -> None:
        self.args = args
        self.argv = argv
        check_env_id(args.env)
        overrides = parse_overrides(args.hyperparams)
        self.changed_on_resume = sorted(set(overrides) - RUN_ONLY_KEYS)
        if args.n_timesteps is not None:
            overrides["n_timesteps"] = args.n_timesteps
        if args.n_envs is not None:
            overrides["n_envs"] = args.n_envs
        self.resume_from = resolve_model_path(args.trained_agent) if args.trained_agent else None
        self.resume_data = read_model_data(self.resume_from) if self.resume_from else {}
        if self.resume_from is not None:
            fixed = [key for key in self.changed_on_resume if key in FIXED_ON_RESUME]
            if fixed:
                raise ConfigError(f"-params {', '.join(fixed)}: cannot be changed when resuming (-i)")
        if self.resume_data.get("mario_env"):  # the env travels with the model; -params env_kwargs change parts of it
            saved = {k: v for k, v in self.resume_data["mario_env"].items() if k != "env_id"}
            asked = overrides.get("env_kwargs") or {}
            if not isinstance(asked, dict):
                raise ConfigError(f"-params env_kwargs: expected a mapping, got {asked!r}")
            shape = sorted(k for k in ENV_FIXED_ON_RESUME if k in asked and asked[k] != saved.get(k, asked[k]))
            if shape:
                raise ConfigError(f"-params env_kwargs {', '.join(shape)}: cannot be changed when resuming (-i)")
            overrides["env_kwargs"] = {**saved, **asked}
        conf_file = args.conf_file
        if conf_file is None and self.resume_from is not None:
            # resuming: the hyperparameters of the run the model came from (the model's own are used anyway)
            for folder in (self.resume_from.parent, self.resume_from.parent.parent):
                if (folder / "config.yml").is_file():
                    conf_file = str(folder / "config.yml")
                    break
        self.hyperparams = load_hyperparams(args.algo, args.env, conf_file, overrides)
        if args.device not in ("auto", "cpu") and not args.device.startswith("cuda"):
            raise ConfigError(f"--device: expected auto, cpu or cuda[:N], got {args.device!r}")
        if args.trained_agent and Path(args.trained_agent).is_dir():
            self.folder = Path(args.trained_agent)  # continue in the same run folder
        else:
            self.folder = run_folder_name(args.log_folder, args.algo, args.env)
        self.stop = StopOnRequest()

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return dict(self.hyperparams.get("env_kwargs", {}))

    def write_records(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # the hyperparameter file's own shape: `-conf config.yml` (with this run's --algo/--env/--seed) reruns it
        config = {self.args.env: self.hyperparams}
        atomic_write_text(self.folder / "config.yml", yaml.safe_dump(config, sort_keys=False))
        command = shlex.join([Path(sys.executable).name, "-m", "sb3_mario.train", *self.argv])
        previous = self.folder / "command.txt"
        if previous.is_file():  # resumed in this folder: keep the history of commands and episodes
            atomic_write_text(previous, previous.read_text() + command + "\n")
            self.keep_monitor_files()
        else:
            atomic_write_text(previous, command + "\n")
        atomic_write_text(self.folder / "args.yml", yaml.safe_dump(vars(self.args)))

    def keep_monitor_files(self) -> None:
        """Rename ``<rank>.monitor.csv`` of earlier sessions to ``<rank>.part<k>.monitor.csv`` (Monitor truncates)."""
        for path in sorted(self.folder.glob("*.monitor.csv")):
            rank = path.name.split(".")[0]
            if path.name != f"{rank}.monitor.csv":
                continue
            k = 1
            while (self.folder / f"{rank}.part{k}.monitor.csv").exists():
                k += 1
            path.rename(self.folder / f"{rank}.part{k}.monitor.csv")

    def make_envs(self) -> tuple[VecEnv, VecEnv | None]:
        env = make_mario_vec_env(
            self.args.env,
            n_envs=self.hyperparams.get("n_envs", 1),
            vec_env=self.args.vec_env,
            seed=self.args.seed,
            monitor_dir=str(self.folder),
            **self.env_kwargs,
        )
        eval_env = None
        if self.args.eval_freq > 0:
            eval_kwargs = {**self.env_kwargs, "noop_max": self.args.eval_noop_max}
            eval_env = make_mario_vec_env(
                self.args.env, n_envs=1, vec_env="dummy", seed=self.args.seed + 10_000, **eval_kwargs
            )
        return env, eval_env

    def make_model(self, env: VecEnv) -> OffPolicyAlgorithm:
        algo = ALGOS[self.args.algo]
        tb = self.args.tensorboard_log or str(self.folder / "tensorboard")
        if self.resume_from is not None:
            # rl-zoo's behaviour: hyperparameters given with -params replace the saved ones
            changes = build_kwargs(self.args.algo, {k: self.hyperparams[k] for k in self.changed_on_resume})
            if changes:
                print("resuming with " + ", ".join(f"{k}={v}" for k, v in changes.items()))
            model = algo.load(self.resume_from, env=env, device=self.args.device, tensorboard_log=tb, **changes)
            folder = self.resume_from.parent
            buffer = folder / REPLAY_BUFFER_NAME
            if not buffer.is_file():  # resuming from a run folder's final model: its buffer is with the checkpoints
                buffer = folder / CHECKPOINT_DIR / REPLAY_BUFFER_NAME
            if buffer.is_file() and model.replay_buffer is not None:
                model.load_replay_buffer(buffer)
                print(f"loaded replay buffer {buffer} ({model.replay_buffer.size()} transitions)")
            return model
        kwargs = build_kwargs(self.args.algo, self.hyperparams)
        return algo(
            self.hyperparams.get("policy", "CnnPolicy"),
            env,
            seed=self.args.seed,
            device=self.args.device,
            verbose=self.args.verbose,
            tensorboard_log=tb,
            **kwargs,
        )

    def callbacks(self, model: OffPolicyAlgorithm, eval_env: VecEnv | None) -> list[BaseCallback]:
        n_envs = model.n_envs
        callbacks: list[BaseCallback] = [self.stop, MarioMetricsCallback()]
        self.checkpoint = AtomicCheckpointCallback(
            save_freq=max(self.args.save_freq // n_envs, 1) if self.args.save_freq > 0 else 2**62,
            save_path=str(self.folder / CHECKPOINT_DIR),
            name_prefix="model",
            save_replay_buffer=self.args.save_replay_buffer,
            verbose=self.args.verbose,
        )
        callbacks.append(self.checkpoint)
        if eval_env is not None:
            evaluation = MarioEvalCallback(
                eval_env,
                n_eval_episodes=self.args.eval_episodes,
                eval_freq=max(self.args.eval_freq // n_envs, 1),
                log_path=str(self.folder),
                best_model_save_path=None,
                callback_on_new_best=SaveBestModel(self.folder / "best_model.zip"),
                deterministic=True,
                verbose=self.args.verbose,
            )
            evaluation.load_history(self.folder / "evaluations.npz")  # a resumed run keeps its evaluations and best
            callbacks.append(evaluation)
        return callbacks

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            if self.stop.requested is not None:  # second signal: stop now
                raise KeyboardInterrupt
            name = signal.Signals(signum).name
            print(f"\n{name} received: stopping after this step and saving (send it again to abort)", file=sys.stderr)
            self.stop.request(name)

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def save_final(self, model: OffPolicyAlgorithm) -> Path:
        path = save_model(model, self.folder / f"{self.args.env}.zip")
        if self.args.save_replay_buffer and getattr(model, "replay_buffer", None) is not None:
            save_replay_buffer(model, self.folder / CHECKPOINT_DIR / REPLAY_BUFFER_NAME)
        return path

    def execute(self) -> int:
        self.write_records()
        env, eval_env = self.make_envs()
        exit_code = 0
        try:
            model = self.make_model(env)
            model.mario_env = {"env_id": self.args.env, **self.env_kwargs}  # type: ignore[attr-defined]
            callbacks = self.callbacks(model, eval_env)
            self.install_signal_handlers()
            steps = self.hyperparams["n_timesteps"]
            print(f"training {self.args.algo} on {self.args.env} for {steps} steps in {self.folder}")
            try:
                model.learn(
                    steps,
                    callback=callbacks,
                    progress_bar=self.args.progress,
                    tb_log_name=self.args.algo.upper(),
                    reset_num_timesteps=self.resume_from is None,
                    log_interval=10,
                )
            except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
                print(
                    f"error: an env worker process died ({type(exc).__name__}); saving the model, "
                    f"checkpoints in {self.folder / CHECKPOINT_DIR} are kept",
                    file=sys.stderr,
                )
                exit_code = 1
            final = self.save_final(model)
            how = f"stopped by {self.stop.requested}" if self.stop.requested else "done"
            print(f"{how} at {model.num_timesteps} steps: saved {final}")
        finally:
            for vec in (env, eval_env):
                if vec is not None:
                    close_env(vec, worker_died=exit_code == 1)
        return exit_code


def close_env(vec: VecEnv, worker_died: bool = False) -> None:
    """Close a VecEnv; after a worker died, stop the others instead (SB3's close() would wait on them forever)."""
    if worker_died and isinstance(vec, SubprocVecEnv):
        for process in vec.processes:
            process.kill()  # workers ignore SIGINT/SIGTERM; they hold nothing to save
            process.join(timeout=10)
        vec.closed = True
        return
    with contextlib.suppress(EOFError, BrokenPipeError, ConnectionResetError, OSError):
        vec.close()


OPTIMIZE_FLAGS = ("-optimize", "--optimize", "--optimize-hyperparameters")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(flag in argv for flag in OPTIMIZE_FLAGS):  # rl-zoo's spelling of a search: run sb3_mario.tune
        from sb3_mario import tune

        return tune.main([a for a in argv if a not in OPTIMIZE_FLAGS])
    # eval runs in this process (DummyVecEnv) while training envs may be subprocesses: expected, not a problem
    warnings.filterwarnings("ignore", message="Training and eval env are not of the same type")
    args = build_parser().parse_args(argv)
    try:
        return Run(args, argv).execute()
    except Sb3MarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
