"""One hyperparameter search end to end: the study, the trials through the Trainer, the best model, the outputs.

`Search` holds what every trial shares (the fixed flags, the prepared data, the space, the objective) and gives
the Trainer its `model_init` and `hp_space`; `SearchTrainer` calls back into it to apply a trial's data and
freezing values, to skip trials once the study is full, and to save the model of each new best trial.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import math
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import psutil
import yaml
from filelock import FileLock

from training.arguments import ArgumentError, ModelArguments, MultiTaskTrainingArguments
from training.balancing import TaskBalancingCallback
from training.evaluation import select_and_calibrate
from training.metrics import build_compute_metrics
from training.recipe import build_model, build_trainer, configure_tasks
from training.run import Evaluation, Setup, evaluate_and_save, model_inputs
from training.search import (
    Objective,
    SearchArguments,
    SearchTrainer,
    configure_freezing,
    finished_trials,
    normalize_trial_arguments,
    replace_fields,
    trial_values,
    with_objective,
)
from training.search_space import DATA_PARAMS, MODEL_PARAMS, Param, split_params

logger = logging.getLogger(__name__)


class Search:
    """A study's shared state and the per-trial callbacks of `SearchTrainer`."""

    def __init__(self, model_args: ModelArguments, args: MultiTaskTrainingArguments, search_args: SearchArguments,
                 setup: Setup, space: dict[str, Param], objective: Objective, depth: int, flags: dict[str, Any],
                 output_dir: Path, save_best: bool = True, n_trials: int | None = None):
        self.model_args, self.args, self.search_args = model_args, args, search_args
        self.n_trials = n_trials or search_args.n_trials
        self.setup, self.space, self.objective, self.depth = setup, space, objective, depth
        self.flags, self.output_dir, self.save_best = flags, output_dir, save_best
        self.weights = setup.data.sample_weights(self.weighted_task()) if self.weighted_task() else None
        self.evaluation: Evaluation | None = None
        self.started: dict[int, float] = {}

    def weighted_task(self) -> str | None:
        """The task `weighted_sampling: true` weights by: the one named by --weighted-sampling, else the first
        classification task."""
        data = self.setup.data
        if data.weighted_sampling:
            return data.weighted_sampling
        return next((t["name"] for t in data.tasks if t["type"] != "regression"), None)

    # ----- what Trainer.hyperparameter_search calls -----

    def model_init(self, trial=None):
        """A fresh model for the trial's model and loss values (the fixed flags when `trial` is None)."""
        model_values = {} if trial is None else split_params(trial_values(self.space, trial))[0]
        model_args = replace_fields(self.model_args, model_values)
        data = self.setup.data
        tasks = configure_tasks(data.task_dicts(), model_args, data.train_labels)
        return build_model(model_args, tasks, self.setup.backbone, data.max_length,
                           self.setup.tokenizer.truncation_side)

    def hp_space(self, trial) -> dict[str, Any]:
        """The trial's training-argument values (the Trainer sets them on its arguments)."""
        return {k: v for k, v in trial_values(self.space, trial).items()
                if k not in MODEL_PARAMS and k not in DATA_PARAMS}

    # ----- what SearchTrainer calls -----

    def apply_trial(self, trainer: SearchTrainer, trial) -> None:
        """After the Trainer set the training values: derived settings, freezing, data values, evaluation rate."""
        normalize_trial_arguments(trainer.args)
        configure_freezing(trainer, self.depth)
        model_values, data_values = split_params(trial_values(self.space, trial))[:2]
        augmenter = self.setup.data.augmenter
        if augmenter is not None:
            augmenter.dropout_prob = data_values.get("word_dropout", self.flags.get("word_dropout", 0.0))
            augmenter.dropout_rate = data_values.get("word_dropout_rate", augmenter.dropout_rate)
            augmenter.swap_prob = data_values.get("word_swap", self.flags.get("word_swap", 0.0))
        if "weighted_sampling" in data_values:
            trainer.sample_weights = self.weights if data_values["weighted_sampling"] else None
        for callback in trainer.callback_handler.callbacks:
            if isinstance(callback, TaskBalancingCallback):
                callback.configure(model_values.get("loss_weighting", self.model_args.loss_weighting))
        set_evaluation_rate(trainer.args, self.search_args.evals_per_epoch)

    def before_trial(self, trial) -> None:
        """A worker that finds the study full stops it instead of running one more trial."""
        import optuna

        if finished_trials(trial.study) >= self.n_trials:
            trial.set_user_attr("skipped", True)
            trial.study.stop()
            raise optuna.TrialPruned(f"the study already has {self.n_trials} finished trials")
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        self.started[trial.number] = time.perf_counter()

    def after_trial(self, trainer: SearchTrainer, trial, pruned: bool = False) -> None:
        """Record the trial, save its model when it is the best so far, drop its checkpoints."""
        seconds = time.perf_counter() - self.started.get(trial.number, time.perf_counter())
        trial.set_user_attr("seconds", round(seconds, 1))
        trial.set_user_attr("rss_mb", round(psutil.Process().memory_info().rss / 1e6))  # growth shows in trials.csv
        value = getattr(trainer, "objective", None)
        if not pruned and self.save_best and value is not None and math.isfinite(value):
            self.maybe_save_best(trainer, trial, value)
        shutil.rmtree(Path(trainer.args.output_dir) / f"run-{trial.number}", ignore_errors=True)
        best = best_value(trial.study, self.objective.direction, include=(trial.number, value))
        logger.info("trial %d %s in %.0f s: objective %s; best so far %s", trial.number,
                    "pruned" if pruned else "finished", seconds, "n/a" if value is None else f"{value:.4f}",
                    "n/a" if best is None else f"{best:.4f}")
        gc.collect()

    def config_flags(self, values: dict[str, Any]) -> dict[str, Any]:
        """The fixed flags plus a trial's values, as `train_enhanced.py --config` reads them."""
        flags = {**self.flags, **values}
        if "weighted_sampling" in values:
            flags["weighted_sampling"] = self.weighted_task() if values["weighted_sampling"] else None
        return flags

    def maybe_save_best(self, trainer: SearchTrainer, trial, value: float) -> None:
        """Calibrate, report and save this trial's model to OUTPUT/best when no saved trial is better."""
        record = self.output_dir / "best.json"
        with FileLock(str(self.output_dir / ".best.lock")):
            saved = json.loads(record.read_text()) if record.is_file() else None
            if saved is not None and not better(value, saved["objective"], self.objective.direction):
                return
            flags = self.config_flags(trial_values(self.space, trial))
            evaluate_and_save(trainer, self.setup, self.evaluation, {"flags": flags, "trial": trial.number},
                              output_dir=self.output_dir / "best")
            write_yaml(self.output_dir / "best_flags.yaml", flags)
            record.write_text(json.dumps({"trial": trial.number, "objective": value, "params": trial.params}))
        logger.info("trial %d is the best so far (%.4f): saved to %s", trial.number, value, self.output_dir / "best")


def better(value: float, other: float, direction: str) -> bool:
    return value > other if direction == "maximize" else value < other


def best_value(study, direction: str, include: tuple[int, float | None] | None = None) -> float | None:
    """Best objective among the study's complete trials (and `include`, a trial that is finishing)."""
    values = [t.value for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and t.value is not None]
    if include is not None and include[1] is not None and math.isfinite(include[1]):
        values.append(include[1])
    if not values:
        return None
    return max(values) if direction == "maximize" else min(values)


def set_evaluation_rate(args, evals_per_epoch: int) -> None:
    """Evaluate (and checkpoint) `evals_per_epoch` times an epoch, as a ratio of the trial's steps."""
    evaluations = evals_per_epoch if args.max_steps > 0 else evals_per_epoch * max(args.num_train_epochs, 1)
    args.eval_steps = args.save_steps = 1.0 / max(evaluations, 1)


def write_yaml(path: Path, values: dict[str, Any]) -> None:
    from inference.io import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(json.loads(json.dumps(values, default=str)), sort_keys=True))


def search_training_arguments(args: MultiTaskTrainingArguments, objective: Objective,
                              output_dir: Path) -> MultiTaskTrainingArguments:
    """The fixed training arguments of every trial: frequent evaluation, best checkpoint by the objective."""
    return dataclasses.replace(
        args, output_dir=str(output_dir / "trials"), eval_strategy="steps", save_strategy="steps",
        eval_steps=0.25, save_steps=0.25, load_best_model_at_end=True, metric_for_best_model="objective",
        greater_is_better=objective.direction == "maximize", save_total_limit=1, resume=False, push_to_hub=False,
        report_to="none")


def build_search_trainer(search: Search) -> SearchTrainer:
    """The trainer every trial of `search` runs in (`model_init` gives each trial its own model)."""
    setup, args = search.setup, search.args
    first = search.model_init(None)
    splits, collator = model_inputs(first, args, setup)
    select, calibrate = select_and_calibrate(splits, seed=setup.data.split_seed)
    search.evaluation = Evaluation(calibrate, splits["test"] if "test" in splits else None, collator)
    compute = with_objective(build_compute_metrics(first.config.tasks), search.objective)
    del first
    balancing = TaskBalancingCallback.from_args("fixed", args)  # each trial configures its own strategy
    fixed_weights = search.weights if setup.data.weighted_sampling else None  # --weighted-sampling, computed once
    return build_trainer(None, args, splits["train"], select, collator, setup.tokenizer, compute, fixed_weights,
                         search.model_init, setup.data.train_lengths, setup.data.augmenter,
                         task_names=setup.data.task_names, trainer_class=SearchTrainer, callbacks=[balancing],
                         search=search)


def open_storage(url: str | None, output_dir: Path, heartbeat: int = 20):
    """An Optuna RDB storage with heartbeats, so a trial whose process died is marked failed and run again."""
    import warnings

    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from sqlalchemy.exc import IntegrityError, OperationalError

    if url is None:
        output_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{(output_dir / 'study.db').absolute()}"
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for attempt in range(3):
        try:
            return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2))
        except Exception as error:  # sqlalchemy and optuna raise many types for a storage that cannot be opened
            failure = error
            # Workers started together on a new database race to create its tables; the loser retries and finds
            # them made. Anything else (a missing folder, an unknown driver) fails at once.
            racing = isinstance(error, IntegrityError) or (
                isinstance(error, OperationalError) and any(w in str(error) for w in ("already exists", "locked")))
            if not racing or attempt == 2:
                break
            time.sleep(1 + attempt)
    raise ArgumentError(f"--storage {url}: cannot be opened ({' '.join(str(failure).split())[:300]})")


def make_pruner(name: str):
    """Hyperband (steps are evaluation counts scaled to global steps by the Trainer's reports), median or none."""
    import optuna

    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0, interval_steps=1)
    return optuna.pruners.NopPruner()


def run_stage(search: Search, study_name: str, storage, n_trials: int, timeout: float | None):
    """Top the study up to `n_trials` finished trials through `Trainer.hyperparameter_search`; returns the study."""
    import os

    import optuna

    study = optuna.create_study(study_name=study_name, storage=storage, direction=search.objective.direction,
                                load_if_exists=True)
    remaining = n_trials - finished_trials(study)
    logger.info("study %r: %d finished trial(s), %d to run", study_name, n_trials - remaining, max(remaining, 0))
    if remaining > 0:
        trainer = build_search_trainer(search)
        sampler = optuna.samplers.TPESampler(seed=(search.args.seed * 100_003 + os.getpid()) % 2**31)
        try:
            trainer.hyperparameter_search(
                hp_space=search.hp_space, compute_objective=lambda metrics: metrics["eval_objective"],
                n_trials=remaining, direction=search.objective.direction, backend="optuna", timeout=timeout,
                storage=storage, study_name=study_name, load_if_exists=True, sampler=sampler,
                pruner=make_pruner(search.search_args.pruner), gc_after_trial=True, catch=(ValueError,))
        except ValueError:  # the Trainer asks for the best trial at the end, which fails when none completed
            if any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
                raise
            logger.warning("study %r: no trial completed (all pruned or failed)", study_name)
        del trainer
        gc.collect()
    return optuna.load_study(study_name=study_name, storage=storage)


def heads_only(search: Search, output_dir: Path) -> Search:
    """The fast stage: heads-only settings on the embedding cache (no encoder layer trains, no augmentation)."""
    from training.search_space import HEADS_ONLY_PARAMS

    space = {name: param for name, param in search.space.items() if name in HEADS_ONLY_PARAMS}
    if "pooling" in space:
        space["pooling"] = dataclasses.replace(space["pooling"], choices=tuple(
            c for c in space["pooling"].choices if c != "attention") or ("mean",))
    data = search.setup.data
    tokenized = data.tokenized.copy()
    tokenized["train"] = tokenized["train"].with_format(None)  # no augmentation transform
    setup = dataclasses.replace(search.setup, data=dataclasses.replace(data, augmenter=None, tokenized=tokenized))
    args = dataclasses.replace(search.args, freeze_strategy="full", cache_embeddings="on",
                               output_dir=str(output_dir / "heads_trials"))
    return Search(search.model_args, args, search.search_args, setup, space, search.objective, search.depth,
                  search.flags, output_dir, save_best=False, n_trials=search.search_args.fast_trials)


def enqueue_best(source, target, names: set[str], count: int = 3) -> None:
    """Try the best settings of the fast stage first in the fine-tuning stage (once, also on reruns)."""
    reverse = source.direction.name == "MAXIMIZE"
    complete = [t for t in source.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and t.value is not None]
    for trial in sorted(complete, key=lambda t: t.value, reverse=reverse)[:count]:
        target.enqueue_trial({k: v for k, v in trial.params.items() if k in names}, skip_if_exists=True)


def write_outputs(study, output_dir: Path) -> dict[str, Path]:
    """trials.csv (every parameter, objective, state and duration) and the optimisation-history and parameter-
    importance plots (Optuna's matplotlib visualisations)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    from inference.io import write_text_atomic

    files = {"trials.csv": output_dir / "trials.csv"}
    frame = study.trials_dataframe(attrs=("number", "value", "state", "duration", "params", "user_attrs"))
    write_text_atomic(files["trials.csv"], frame.to_csv(index=False))
    plots = output_dir / "plots"
    plots.mkdir(exist_ok=True)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    drawings = {"optimization_history.png": optuna.visualization.matplotlib.plot_optimization_history}
    if len(complete) >= 2 and len({json.dumps(t.params, sort_keys=True) for t in complete}) >= 2:
        drawings["param_importances.png"] = optuna.visualization.matplotlib.plot_param_importances
    for name, draw in drawings.items():
        axes = draw(study)
        axes.figure.savefig(plots / name, dpi=100, bbox_inches="tight")
        plt.close(axes.figure)
        files[name] = plots / name
    return files


def explicit_flags(model_args, data_args, args) -> dict[str, Any]:
    """The flags a run was given (values that differ from each dataclass's defaults), for best_flags.yaml."""
    from data.arguments import DataArguments

    defaults = {ModelArguments: ModelArguments(), DataArguments: DataArguments()}
    flags = {}
    for instance in (model_args, data_args):
        default = defaults[type(instance)]
        flags.update({f.name: getattr(instance, f.name) for f in dataclasses.fields(instance)
                      if f.init and getattr(instance, f.name) != getattr(default, f.name)})
    stock = MultiTaskTrainingArguments(output_dir=args.output_dir).to_dict()
    flags.update({k: v for k, v in args.to_dict().items() if k in stock and v != stock[k] and k != "output_dir"})
    return flags


def run_search(model_args, data_args, args, search_args, setup: Setup, space, objective, depth: int, storage=None):
    """The fast stage (when asked), then the fine-tuning stage; returns (study, files written)."""
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    storage = storage or open_storage(search_args.storage, output_dir, search_args.heartbeat_interval)
    flags = explicit_flags(model_args, data_args, args)
    search = Search(model_args, search_training_arguments(args, objective, output_dir), search_args, setup, space,
                    objective, depth, flags, output_dir)
    if search_args.fast_trials:
        fast = heads_only(search, output_dir)
        heads = run_stage(fast, f"{search_args.study_name}-heads", storage, search_args.fast_trials,
                          search_args.timeout)
        import optuna

        main_study = optuna.create_study(study_name=search_args.study_name, storage=storage, load_if_exists=True,
                                         direction=objective.direction)
        enqueue_best(heads, main_study, set(space))
    study = run_stage(search, search_args.study_name, storage, search_args.n_trials, search_args.timeout)
    for leftover in ("trials", "heads_trials"):
        shutil.rmtree(output_dir / leftover, ignore_errors=True)
    return study, write_outputs(study, output_dir)
