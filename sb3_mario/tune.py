"""``python -m sb3_mario.tune --algo ddqn``: Optuna search over DDQN hyperparameters, one machine or many.

Storage: by default a journal file in the study folder (``<log-folder>/<algo>/<study-name>/study.journal``), for
workers on one machine; ``--storage postgresql://...`` (or ``sqlite:///...``) uses Optuna's RDB storage, for workers
on several machines, with heartbeats: a worker killed mid-trial has its trial marked failed after ``--grace-period``
seconds and re-queued (``RetryHeartbeatStaleTrialCallback``). The journal has no heartbeat: ``--fail-stale-after``
fails and re-queues trials that have been running longer than that, an explicit sweep you ask for.

Each trial trains with the sampled hyperparameters (``-params`` fixed overrides win), evaluates every
``n_timesteps / n_evaluations`` steps under the evaluation protocol (:mod:`sb3_mario.evaluation`: greedy, sticky
actions 0.25, 0-30 no-op starts) and reports the score: ``10000 * flag rate + mean furthest x`` (the flag rate first,
ties broken by x; the flag of a stage is at ~3161 on 1-1). "Finished" means COMPLETE or PRUNED; the study stops
at exactly ``--max-total-trials`` finished trials however many workers race for the last ones.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import math
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from stable_baselines3.common.callbacks import BaseCallback

from sb3_mario._io import atomic_path, atomic_write_text
from sb3_mario.callbacks import ProtocolEvalCallback
from sb3_mario.config import ALGOS, load_hyperparams, parse_overrides
from sb3_mario.envs.backend import check_env_id
from sb3_mario.errors import ConfigError, Sb3MarioError, print_error
from sb3_mario.evaluation import ProtocolResult
from sb3_mario.experiment import check_device, make_env, make_evaluation, make_model
from sb3_mario.search_space import params_to_hyperparams, sample_params

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


class OverQuota(Exception):
    """This trial was numbered after the last one the study needs: it is failed without training."""


class TrialEvalCallback(ProtocolEvalCallback):
    """Evaluate under the protocol, report the score to the trial, and stop training when Optuna prunes it."""

    def __init__(self, env_kwargs: dict[str, Any], *, trial: optuna.Trial, **kwargs: Any) -> None:
        super().__init__(env_kwargs, confirm_at=math.inf, **kwargs)  # quick evaluations only
        self.trial = trial
        self.evaluations = 0
        self.score = -math.inf
        self.pruned = False

    def evaluate(self) -> bool:
        super().evaluate()
        assert self.last is not None
        self.evaluations += 1
        self.score = protocol_score(self.last)
        self.trial.report(self.score, self.evaluations)
        self.pruned = self.trial.should_prune()
        return not self.pruned


def protocol_score(result: ProtocolResult) -> float:
    """A trial's score: ``10000 * flag rate + mean furthest x`` (flags first, x breaks ties; x < 10000)."""
    return 10_000 * result.flag_rate + result.mean_x


class NanGuard(BaseCallback):
    """Stop training at the first non-finite reward or loss."""

    def __init__(self) -> None:
        super().__init__()
        self.found: str | None = None

    def _on_step(self) -> bool:
        rewards = np.asarray(self.locals.get("rewards", []), dtype=np.float64)
        loss = self.model.logger.name_to_value.get("train/loss", 0.0)
        if not np.all(np.isfinite(rewards)):
            self.found = "reward"
        elif not math.isfinite(loss):
            self.found = "loss"
        return self.found is None


class Tuner:
    """A study plus the settings of one worker (see the module docstring)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        check_env_id(args.env)
        self.fixed = parse_overrides(args.hyperparams)
        load_hyperparams(args.algo, args.env, args.conf_file, {**self.fixed, "n_timesteps": args.n_timesteps})
        self.folder = Path(args.log_folder) / args.algo / args.study_name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.storage = make_storage(args.storage, self.folder, args.heartbeat_interval, args.grace_period)
        self.study = optuna.create_study(
            study_name=args.study_name,
            storage=self.storage,
            sampler=make_sampler(args.sampler, args.seed, args.n_startup_trials),
            pruner=make_pruner(args.pruner, args.n_startup_trials, args.n_evaluations),
            direction="maximize",
            load_if_exists=True,
        )
        if self.study.directions != [optuna.study.StudyDirection.MAXIMIZE]:
            raise ConfigError(
                f"--study-name {args.study_name!r}: exists with direction "
                f"{self.study.directions[0].name.lower()}, this search maximizes: pick another name"
            )

    def hyperparams(self, params: dict[str, Any]) -> dict[str, Any]:
        """Full hyperparameters of a trial: the YAML block, then the sampled params, then the fixed ``-params``."""
        overrides = {**params_to_hyperparams(params), **self.fixed, "n_timesteps": self.args.n_timesteps}
        return load_hyperparams(self.args.algo, self.args.env, self.args.conf_file, overrides)

    def objective(self, trial: optuna.Trial) -> float:
        live_before = [t for t in self.study.get_trials(deepcopy=False, states=LIVE) if t.number < trial.number]
        if len(live_before) >= self.args.max_total_trials:
            trial.set_user_attr("over_quota", True)
            raise OverQuota(f"trial {trial.number}: the study already has {len(live_before)} trials")
        sample_params(trial, self.args.algo)
        try:
            hp = self.hyperparams(trial.params)
        except ConfigError as exc:
            raise optuna.TrialPruned(f"invalid combination: {exc}") from None
        if hp["learning_starts"] >= hp["n_timesteps"] or hp["batch_size"] > hp["buffer_size"]:
            raise optuna.TrialPruned("invalid combination: nothing would be learned in this budget")
        return self.train_trial(trial, hp)

    def train_trial(self, trial: optuna.Trial, hp: dict[str, Any]) -> float:
        seed = self.args.seed + trial.number
        env = make_env(self.args.env, hp, seed, vec_env="dummy")
        try:
            model = make_model(self.args.algo, hp, env, seed, self.args.device)
            eval_freq = hp["n_timesteps"] // self.args.n_evaluations
            evaluate = make_evaluation(
                model, eval_freq, self.args.eval_episodes, seed, callback_class=TrialEvalCallback, trial=trial
            )
            assert isinstance(evaluate, TrialEvalCallback)
            guard = NanGuard()
            model.learn(hp["n_timesteps"], callback=[guard, evaluate])
        finally:
            env.close()
        if guard.found:
            raise optuna.TrialPruned(f"non-finite {guard.found}")
        if evaluate.pruned:
            raise optuna.TrialPruned()
        if evaluate.evaluations == 0:
            raise optuna.TrialPruned("no evaluation ran")
        return evaluate.score

    def count(self, states: tuple[TrialState, ...]) -> int:
        return len(self.study.get_trials(deepcopy=False, states=states))

    def run(self) -> int:
        """Run up to ``--n-trials`` trials in this worker; stop once the study has its finished trials."""
        started = 0
        while started < self.args.n_trials and self.count(FINISHED) < self.args.max_total_trials:
            if self.args.fail_stale_after is not None:
                self.sweep_stale(self.args.fail_stale_after)
            if self.count(LIVE) >= self.args.max_total_trials and self.count((TrialState.WAITING,)) == 0:
                # the remaining trials are running in other workers: wait for them, unless nothing can fail them
                if not isinstance(self.storage, RDBStorage) and self.args.fail_stale_after is None:
                    break
                if isinstance(self.storage, RDBStorage):
                    optuna.storages.fail_stale_trials(self.study)
                time.sleep(self.args.poll_seconds)
                continue
            started += 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.optimize(self.objective, n_trials=1, catch=(OverQuota,), gc_after_trial=True)
        return started

    def sweep_stale(self, seconds: float) -> None:
        """Fail RUNNING trials started more than ``seconds`` ago and queue their params again (journal storage)."""
        now = datetime.datetime.now()
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.datetime_start is not None and (now - t.datetime_start).total_seconds() > seconds:
                self.storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
                if "one_minus_gamma" in t.params:
                    self.study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)

    def write_outputs(self) -> list[Path]:
        """``best_hyperparams.yml`` (a YAML ``train -conf`` reads), ``trials.csv`` and history/importance PNGs."""
        written = [self.write_csv()]
        completed = [t for t in self.study.trials if t.state == TrialState.COMPLETE]
        if completed:
            best = max(completed, key=lambda t: t.value if t.value is not None else -math.inf)
            written.append(self.export_trial(best.number, self.folder / "best_hyperparams.yml"))
        if len(completed) >= 2:
            written += self.write_plots()
        return written

    def export_trial(self, number: int, path: Path) -> Path:
        trial = self.study.trials[number]
        if not trial.params:
            raise ConfigError(f"--export-trial {number}: that trial has no sampled params")
        hp = self.hyperparams(trial.params)
        block = load_hyperparams(self.args.algo, self.args.env, self.args.conf_file, self.fixed)
        hp["n_timesteps"] = block["n_timesteps"]  # the full budget of the YAML, not this search's per-trial budget
        header = f"# {self.args.study_name} trial {number}: score {trial.value}\n"
        return atomic_write_text(path, header + yaml.safe_dump({self.args.env: hp}, sort_keys=False))

    def write_csv(self) -> Path:
        trials = self.study.trials
        param_names = sorted({k for t in trials for k in t.params})
        path = self.folder / "trials.csv"
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["number", "state", "value", "datetime_start", "duration_s", "retry_of", *param_names])
            for t in trials:
                duration = t.duration.total_seconds() if t.duration is not None else ""
                retry = t.user_attrs.get("retry_of", t.system_attrs.get("failed_trial", ""))
                row = [t.number, t.state.name, t.value, t.datetime_start, duration, retry]
                writer.writerow(row + [t.params.get(k, "") for k in param_names])
        return path

    def write_plots(self) -> list[Path]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as ovm

        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, plot in (("history", ovm.plot_optimization_history), ("importance", ovm.plot_param_importances)):
                try:
                    plot(self.study)
                except (ValueError, RuntimeError):
                    continue  # e.g. importances need more than one distinct param value
                figure = plt.gcf()
                path = self.folder / f"{name}.png"
                with atomic_path(path) as tmp:
                    figure.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
                plt.close(figure)
                out.append(path)
        return out


def redact(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def make_storage(url: str | None, folder: Path, heartbeat_interval: int, grace_period: int) -> optuna.storages.BaseStorage:
    if url is None:
        return JournalStorage(JournalFileBackend(str(folder / "study.journal")))
    if not re.match(r"^(postgresql|sqlite|mysql)(\+\w+)?://", url):
        raise ConfigError(f"--storage: expected a postgresql://, mysql:// or sqlite:/// URL, got {redact(url)!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
                engine_kwargs={"pool_pre_ping": True},
            )
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--storage {redact(url)}: cannot connect ({redact(reason)[:200]})") from None


def make_sampler(name: str, seed: int, n_startup_trials: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(n_startup_trials=n_startup_trials, seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(name: str, n_startup_trials: int, n_evaluations: int) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=n_evaluations // 3)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sb3_mario.tune", description=__doc__.split("\n\n")[0])
    p.add_argument("--algo", default="ddqn", choices=sorted(ALGOS), help="algorithm (default: ddqn)")
    p.add_argument("--env", default="SuperMarioBros-1-1-v0", help="env id (default: %(default)s)")
    p.add_argument("--n-trials", type=int, default=20, help="trials this worker runs at most (default: 20)")
    p.add_argument("--max-total-trials", type=int, default=50, help="finished trials of the whole study (default: 50)")
    p.add_argument("-n", "--n-timesteps", type=int, default=200_000, help="env steps per trial (default: 200000)")
    p.add_argument("--sampler", default="tpe", choices=["tpe", "random"], help="(default: tpe)")
    p.add_argument("--pruner", default="median", choices=["median", "halving", "none"], help="(default: median)")
    p.add_argument("--n-startup-trials", type=int, default=5, help="random trials before TPE/pruning (default: 5)")
    p.add_argument("--n-evaluations", type=int, default=5, help="evaluations per trial (default: 5)")
    p.add_argument("--eval-episodes", type=int, default=3, help="episodes per evaluation (default: 3)")
    p.add_argument("-f", "--log-folder", default="logs", help="root folder (default: logs)")
    p.add_argument("--storage", help="RDB URL (postgresql://user:pw@host/db); default: a journal file in the study folder")
    p.add_argument("--study-name", default="ddqn_mario", help="(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed; trial k trains with seed + k (default: 0)")
    p.add_argument("-conf", "--conf-file", help="base hyperparameter YAML (default: the packaged ddqn.yml)")
    p.add_argument("-params", "--hyperparams", nargs="+", default=[], metavar="KEY:VALUE", help="fixed overrides")
    p.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda[:N] (default: auto)")
    p.add_argument("--heartbeat-interval", type=int, default=60, help="RDB heartbeat seconds (default: 60)")
    p.add_argument("--grace-period", type=int, default=120, help="RDB: seconds without heartbeat = dead (default: 120)")
    p.add_argument("--fail-stale-after", type=float, help="journal: fail and re-queue trials running longer than this")
    p.add_argument("--poll-seconds", type=float, default=2.0, help=argparse.SUPPRESS)
    p.add_argument("--export-trial", type=int, help="write trial_<N>_hyperparams.yml for trial N and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("n_trials", "max_total_trials", "n_timesteps", "n_evaluations", "eval_episodes"):
        if getattr(args, name) < 1:
            return print_error(f"--{name.replace('_', '-')} must be >= 1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        check_device(args.device)
        tuner = Tuner(args)
        if args.export_trial is not None:
            if not 0 <= args.export_trial < len(tuner.study.trials):
                raise ConfigError(f"--export-trial: no trial {args.export_trial} in this study")
            path = tuner.folder / f"trial_{args.export_trial}_hyperparams.yml"
            print(f"wrote {tuner.export_trial(args.export_trial, path)}")
            return 0
        started = tuner.run()
        written = tuner.write_outputs()
    except Sb3MarioError as exc:
        return print_error(exc)
    print(f"this worker ran {started} trial(s); study {args.study_name}: {tuner.count(FINISHED)} finished")
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
