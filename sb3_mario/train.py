"""``python -m sb3_mario.train --algo ddqn``: train a Mario agent with rl-zoo's flags, and never lose the work.

A run writes ``<log-folder>/<algo>/<env>_<n>/``: the final model ``<env>.zip``, ``best_model.zip`` and
``evaluations.npz`` (SB3's EvalCallback), ``checkpoints/`` (models, the newest replay buffer, ``latest.yml``),
``config.yml`` (the resolved hyperparameters), ``args.yml``, ``command.txt``, Monitor CSVs and TensorBoard events.
Ctrl-C or SIGTERM stops at the next step and saves; ``-i`` resumes from a zip or a run folder.
"""

from __future__ import annotations

import argparse
import contextlib
import pickle
import shlex
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import SubprocVecEnv, VecEnv

from sb3_mario._io import atomic_write_text, describe_write_error
from sb3_mario.callbacks import (
    AtomicCheckpointCallback,
    MarioMetricsCallback,
    StopOnRequest,
    TrainingBudget,
    format_hours,
    replay_buffer_nbytes,
    save_model,
    save_replay_buffer,
)
from sb3_mario.config import ALGOS, load_hyperparams, parse_overrides
from sb3_mario.envs.backend import check_env_id
from sb3_mario.envs.factory import env_defaults, set_vec_archive_counts
from sb3_mario.errors import ConfigError, SaveError, Sb3MarioError, print_error
from sb3_mario.evaluation import close_workers, default_workers
from sb3_mario.experiment import check_device, make_env, make_evaluation, make_model, resume_model
from sb3_mario.params import ENV_PARAMS, params_of
from sb3_mario.runs import (
    CHECKPOINT_DIR,
    FRONTIER_COUNTS_NAME,
    REPLAY_BUFFER_NAME,
    RunFolder,
    read_model_data,
    resolve_model_path,
    run_folder_name,
)


def _int_at_least(low: int, expected: str, rule: str) -> Callable[[str], int]:
    """An argparse ``type`` that reads an integer >= ``low``; ``expected`` and ``rule`` word its two errors."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
        return value

    return parse


positive_int = _int_at_least(1, "a positive integer", "positive")
non_negative_int = _int_at_least(0, "an integer >= 0", ">= 0")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sb3_mario.train",
        description="Train DDQN (or SB3's DQN) on Super Mario Bros. Flags follow rl-baselines3-zoo.",
    )
    p.add_argument("--algo", default="ddqn", choices=sorted(ALGOS), help="algorithm (default: %(default)s)")
    p.add_argument("--env", default="SuperMarioBros-1-1-v0", help="gym-super-mario-bros env id (default: %(default)s)")
    p.add_argument(
        "-n",
        "--n-timesteps",
        type=positive_int,
        help="env transitions to train (default: the YAML's); with -i, N more (default: on to the run's total)",
    )
    packaged = "ddqn, dqn, ddqn_tutorial, ddqn_frontier, ddqn_hop"
    p.add_argument("-conf", "--conf-file", help=f"hyperparameter YAML, or a packaged set: {packaged}")
    p.add_argument(
        "-params",
        "--hyperparams",
        nargs="+",
        default=[],
        metavar="KEY:VALUE",
        help="override hyperparameters, each value read as YAML, e.g. gamma:0.99 train_freq:4",
    )
    p.add_argument(
        "--eval-freq",
        type=int,
        default=20_000,
        help="evaluate under the protocol (README 'Evaluation') every N env transitions; <= 0 disables (default: 20000)",
    )
    p.add_argument("--eval-episodes", type=positive_int, default=5, help="quick episodes per evaluation (default: 5)")
    p.add_argument(
        "--confirm-episodes",
        type=positive_int,
        default=50,
        help="fresh-seed episodes that confirm a high quick flag rate (default: 50)",
    )
    p.add_argument(
        "--eval-workers",
        type=positive_int,
        default=default_workers(),
        help="processes that play an evaluation's episodes at once (default: the CPUs this process may use, at most 4; "
        f"here {default_workers()})",
    )
    p.add_argument(
        "--stop-flag-rate",
        type=float,
        metavar="R",
        help="stop once a confirmation reaches flag rate R in [0, 1] (default: the YAML's stop_flag_rate, if any)",
    )
    p.add_argument(
        "--max-hours",
        type=float,
        help="wall-clock budget of training, cumulative over -i resumes (default: the YAML's max_hours, if any)",
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


def schedule_line(schedule: Callable[[float], float], done: int, steps: int, resumed: bool) -> str:
    """What a learning-rate schedule does in this ``learn()``: SB3's progress runs over the model's steps, from 0 to
    the total (a resume's steps so far + its ``-n``), so a resume starts part-way down the line, not at its top."""
    total = done + steps if resumed else steps
    start = schedule(1.0 - (done if resumed else 0) / total)
    at = getattr(schedule, "at", None)  # a StepSchedule: where it steps down
    if at is not None:
        return f"learning rate {start:.3g}, {schedule(0.0):.3g} from step {round(at * total)} (a step over steps 0 to {total})"
    return f"learning rate {start:.3g} -> {schedule(0.0):.3g} (a schedule over steps 0 to {total})"


class Run:
    """One training run: folder, config, envs, model and callbacks (see the module docstring)."""

    def __init__(self, args: argparse.Namespace, argv: list[str]) -> None:
        self.args = args
        self.argv = argv
        check_env_id(args.env)
        overrides = parse_overrides(args.hyperparams)
        rules = params_of(args.algo)
        # -params that a resumed model takes on (the resume rules are sb3_mario.params')
        self.changed_on_resume = sorted(k for k in overrides if k in rules and rules[k].resume == "model")
        for key in ("n_timesteps", "n_envs", "stop_flag_rate", "max_hours"):
            if getattr(args, key) is not None:
                overrides[key] = getattr(args, key)
        self.resume_from = resolve_model_path(args.trained_agent) if args.trained_agent else None
        self.resume_data = read_model_data(self.resume_from) if self.resume_from else {}
        if self.resume_from is not None:
            fixed = sorted(k for k in overrides if k in rules and rules[k].resume == "refuse")
            if fixed:
                raise ConfigError(f"-params {', '.join(fixed)}: cannot be changed when resuming (-i)")
        if self.resume_data.get("mario_env"):  # the env travels with the model; -params env_kwargs change parts of it
            saved = {k: v for k, v in self.resume_data["mario_env"].items() if k != "env_id"}
            asked = overrides.get("env_kwargs") or {}
            if not isinstance(asked, dict):
                raise ConfigError(f"-params env_kwargs: expected a mapping, got {asked!r}")
            defaults = env_defaults()  # a zip saved before a setting existed was built with its default
            refused = {k for k, param in ENV_PARAMS.items() if param.resume == "refuse"}
            shape = sorted(k for k, value in asked.items() if k in refused and value != saved.get(k, defaults[k]))
            if shape:
                raise ConfigError(f"-params env_kwargs {', '.join(shape)}: cannot be changed when resuming (-i)")
            overrides["env_kwargs"] = {**saved, **asked}
        conf_file = args.conf_file
        if conf_file is None and self.resume_from is not None:
            # resuming: the hyperparameters of the run the model came from (the model's own are used anyway)
            configs = [RunFolder(folder).config for folder in (self.resume_from.parent, self.resume_from.parent.parent)]
            conf_file = next((str(config) for config in configs if config.is_file()), None)
        self.hyperparams = load_hyperparams(args.algo, args.env, conf_file, overrides)
        # n_timesteps is the run's total. A resume without -n goes on to the total of the run it resumes (its
        # config.yml), so that a schedule over the run's steps, and its end, are those of one uninterrupted command;
        # -n N trains N more (rl-zoo's meaning of -n with -i), and the run's total becomes its steps + N.
        self.done_steps = int(self.resume_data.get("num_timesteps", 0)) if self.resume_from is not None else 0
        if self.resume_from is not None and args.n_timesteps is None:
            self.steps = self.hyperparams["n_timesteps"] - self.done_steps
        else:
            self.steps = self.hyperparams["n_timesteps"]
            self.hyperparams["n_timesteps"] = self.done_steps + self.steps
        check_device(args.device)
        if args.trained_agent and Path(args.trained_agent).is_dir():
            self.folder = Path(args.trained_agent)  # continue in the same run folder
        else:
            self.folder = run_folder_name(args.log_folder, args.algo, args.env)
        self.run = RunFolder(self.folder)
        self.stop = StopOnRequest()

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return dict(self.hyperparams.get("env_kwargs", {}))

    def write_records(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        swept = self.run.sweep_temp_files()  # this process owns the run folder from here on
        if swept:
            print(swept)
        if self.resume_from is not None and not self.resume_from.is_relative_to(self.folder):
            # a new folder that goes on from another run's model: what that run's killed saves left goes too
            origin = self.resume_from.parent
            source = RunFolder(origin.parent if origin.name == CHECKPOINT_DIR else origin)
            swept = source.sweep_temp_files(owned=False)
            if swept:
                print(swept)
        # the hyperparameter file's own shape: `-conf config.yml` (with this run's --algo/--env/--seed) reruns it
        config = {self.args.env: self.hyperparams}
        atomic_write_text(self.run.config, yaml.safe_dump(config, sort_keys=False))
        command = shlex.join([Path(sys.executable).name, "-m", "sb3_mario.train", *self.argv])
        previous = self.run.commands
        if previous.is_file():  # resumed in this folder: keep the history of commands and episodes
            atomic_write_text(previous, previous.read_text() + command + "\n")
            self.run.keep_monitor_files()
        else:
            atomic_write_text(previous, command + "\n")
            if self.resume_from is not None:  # a new folder that goes on from another run's model
                self.run.write_origin(
                    self.resume_from,
                    int(self.resume_data.get("num_timesteps", 0)),
                    float(self.resume_data.get("training_seconds", 0.0) or 0.0),
                )
        atomic_write_text(self.run.args, yaml.safe_dump(vars(self.args)))

    def make_env(self) -> VecEnv:
        return make_env(self.args.env, self.hyperparams, self.args.seed, self.args.vec_env, self.folder)

    def make_model(self, env: VecEnv) -> OffPolicyAlgorithm:
        tb = self.args.tensorboard_log or str(self.run.tensorboard)
        if self.resume_from is not None:
            # rl-zoo's behaviour: hyperparameters given with -params replace the saved ones
            changes = {k: self.hyperparams[k] for k in self.changed_on_resume}
            model = resume_model(
                self.args.algo, self.resume_from, changes, env, self.args.seed, device=self.args.device, tensorboard_log=tb
            )
            # a checkpoint's buffer is beside it; a run folder's final model has it with the checkpoints
            buffer = self.resume_from.parent / REPLAY_BUFFER_NAME
            if not buffer.is_file():
                buffer = RunFolder(self.resume_from.parent).replay_buffer
            if model.replay_buffer is None:
                return model
            if not buffer.is_file():
                print(f"no replay buffer beside {self.resume_from}: resuming with an empty one")
                return model
            empty = model.replay_buffer
            model.load_replay_buffer(buffer)
            saved = getattr(model.replay_buffer, "saved_at_step", None)  # None: saved before buffers were marked
            if saved is not None and saved > model.num_timesteps:
                # a branch from an earlier checkpoint: the newest buffer holds transitions from its future (an older
                # buffer, of a checkpoint whose own buffer save was killed, is only some transitions short: loaded)
                model.replay_buffer = empty
                print(
                    f"the replay buffer beside {self.resume_from} was saved at step {saved}, the model's is "
                    f"{model.num_timesteps}: resuming with an empty one"
                )
                return model
            print(f"loaded replay buffer {buffer} ({model.replay_buffer.size()} transitions)")
            self.restore_frontier_counts(env, buffer.with_name(FRONTIER_COUNTS_NAME))
            return model
        return make_model(self.args.algo, self.hyperparams, env, self.args.seed, self.args.device, self.args.verbose, tb)

    def restore_frontier_counts(self, env: VecEnv, path: Path) -> None:
        """Give the envs the frontier archives' counts saved beside the replay buffer, if both have them."""
        if not path.is_file() or not (self.env_kwargs.get("frontier_starts") or 0.0):
            return
        try:
            counts = pickle.loads(path.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
            print(f"warning: {path} unreadable ({type(exc).__name__}): the frontier archives start empty", file=sys.stderr)
            return
        print(set_vec_archive_counts(env, counts))

    def callbacks(self, model: OffPolicyAlgorithm) -> list[BaseCallback]:
        self.checkpoint = AtomicCheckpointCallback(
            save_freq=max(self.args.save_freq // model.n_envs, 1) if self.args.save_freq > 0 else 2**62,
            save_path=str(self.run.checkpoints),
            name_prefix="model",
            save_replay_buffer=self.args.save_replay_buffer,
            verbose=self.args.verbose,
        )
        max_hours = self.hyperparams.get("max_hours")
        self.budget = TrainingBudget(
            max_seconds=max_hours * 3600 if max_hours is not None else None,
            total_timesteps=self.hyperparams["n_timesteps"],
            progress=self.args.progress,
        )
        callbacks: list[BaseCallback] = [self.stop, MarioMetricsCallback(), self.checkpoint, self.budget]
        self.evaluation = None
        if self.args.eval_freq > 0:
            self.evaluation = make_evaluation(
                model,
                self.args.eval_freq,
                self.args.eval_episodes,
                self.args.seed,
                confirm_episodes=self.args.confirm_episodes,
                n_workers=self.args.eval_workers,
                should_stop=lambda: self.stop.requested is not None,  # Ctrl-C never waits for a confirmation
                stop_flag_rate=self.hyperparams.get("stop_flag_rate"),
                best_model_path=self.run.best_model,
                log_path=self.run.evaluations,
                clock=self.budget,
                verbose=self.args.verbose,
            )
            self.evaluation.load_history()  # a resumed run keeps its evaluations, best score and seeds
            self.budget.evaluation = self.evaluation
            callbacks.append(self.evaluation)
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

    def save_final(self, model: OffPolicyAlgorithm, worker_died: bool = False) -> Path:
        """Save the final model (and buffer); an unwritable file is a :class:`SaveError` naming the last good
        checkpoint. After a worker died, the frontier counts beside the buffer stay those of the last checkpoint."""
        path = self.run.final_model(self.args.env)
        try:
            save_model(model, path)
        except OSError as exc:
            last = self.checkpoint.last_good
            size = last.stat().st_size if last is not None and last.is_file() else 0
            kept = f"; the last good checkpoint is {last}" if last is not None else "; no checkpoint was saved"
            raise SaveError(describe_write_error(path, exc, size) + kept) from None
        if self.args.save_replay_buffer and getattr(model, "replay_buffer", None) is not None:
            buffer = self.run.replay_buffer
            try:
                save_replay_buffer(model, buffer, archive_counts=not worker_died)
            except OSError as exc:
                needed = replay_buffer_nbytes(model.replay_buffer)
                raise SaveError(describe_write_error(buffer, exc, needed) + f"; the final model {path} was saved") from None
        return path

    def report(self, model: OffPolicyAlgorithm, final: Path) -> None:
        """The run's last line: the level done (steps, time, model), or the stop rule not met (the best model)."""
        hours = format_hours(self.budget.train_seconds)
        evaluation = self.evaluation
        rate = self.hyperparams.get("stop_flag_rate")
        if evaluation is not None and evaluation.reached is not None:
            print(
                f"reached flag rate {rate:.0%} ({evaluation.reached.summary()} on fresh seeds) at "
                f"{model.num_timesteps} steps after {hours} of training: saved {final}"
            )
            return
        if self.stop.requested:
            how = f"stopped by {self.stop.requested}"
        elif self.budget.out_of_time:
            how = f"out of time ({hours} of {format_hours(self.hyperparams['max_hours'] * 3600)})"
        else:
            how = "done"
        best = ""
        if evaluation is not None and evaluation.best is not None:
            best = f"; best model {self.run.best_model} ({evaluation.best[0]:.0%} flags)"
        missed = f", flag rate {rate:.0%} not reached" if rate is not None else ""
        print(f"{how} at {model.num_timesteps} steps after {hours} of training{missed}: saved {final}{best}")

    def execute(self) -> int:
        if self.steps <= 0:  # before touching the run folder
            print(
                f"{self.resume_from} is at {self.done_steps} steps, the run's total is "
                f"{self.hyperparams['n_timesteps']}: nothing to train (-n N trains N more)"
            )
            return 0
        self.write_records()
        env = self.make_env()
        exit_code = 0
        try:
            model = self.make_model(env)
            callbacks = self.callbacks(model)
            self.install_signal_handlers()
            steps = self.steps
            print(f"training {self.args.algo} on {self.args.env} for {steps} steps in {self.folder}")
            if callable(model.learning_rate):
                print(schedule_line(model.learning_rate, model.num_timesteps, steps, self.resume_from is not None))
            try:
                model.learn(
                    steps,
                    callback=callbacks,
                    progress_bar=False,
                    tb_log_name=self.args.algo.upper(),
                    reset_num_timesteps=self.resume_from is None,
                    log_interval=10,
                )
            except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
                print(
                    f"error: an env worker process died ({type(exc).__name__}); saving the model, "
                    f"checkpoints in {self.run.checkpoints} are kept",
                    file=sys.stderr,
                )
                exit_code = 1
            final = self.save_final(model, worker_died=exit_code == 1)
            self.report(model, final)
        finally:
            close_workers(kill=True)  # the evaluation's worker processes, if any
            close_env(env, worker_died=exit_code == 1)
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


def one_line_warning(message: Warning | str, category: type[Warning], *_args: Any, **_kwargs: Any) -> str:
    """Warnings of the CLI as one ``warning: ...`` line, without the source line."""
    return f"warning: {message}\n"


OPTIMIZE_FLAGS = ("-optimize", "--optimize", "--optimize-hyperparameters")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(flag in argv for flag in OPTIMIZE_FLAGS):  # rl-zoo's spelling of a search: run sb3_mario.tune
        from sb3_mario import tune

        return tune.main([a for a in argv if a not in OPTIMIZE_FLAGS])
    # eval runs in this process (DummyVecEnv) while training envs may be subprocesses: expected, not a problem
    warnings.filterwarnings("ignore", message="Training and eval env are not of the same type")
    warnings.formatwarning = one_line_warning
    args = build_parser().parse_args(argv)
    try:
        return Run(args, argv).execute()
    except Sb3MarioError as exc:
        return print_error(exc)
    except OSError as exc:  # the run folder cannot be made or written (read-only, permissions, full disk)
        where = f" {exc.filename}" if exc.filename else ""
        return print_error(f"cannot write{where}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
