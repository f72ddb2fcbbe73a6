"""Hyperparameter search through `Trainer.hyperparameter_search(backend="optuna")`, for multi-task models.

What it adds to the stock search (whose known gaps are the reasons for each part):
- model settings are searched too: `model_init(trial)` builds the model from the trial's pooling, head and loss
  values; data settings (word dropout, weighted sampling) are applied to the prepared data of the trainer;
- the objective is the validation `score`, one task's metric, or a weighted mix, never the sum of all metrics;
- evaluations happen `--evals-per-epoch` times an epoch, the pruner (Hyperband, median or none) acts at each, and
  a trial's value is its best evaluation, the one its loaded best checkpoint had;
- the study lives in an Optuna storage (SQLite in the output folder by default, any RDB URL for several
  machines): running the command again tops it up to `--n-trials` finished trials, several workers share it, and a
  trial whose process died is retried (heartbeat);
- the best trial's model, not the last one's, is calibrated, reported and saved to `OUTPUT/best/`, with its flags
  in `OUTPUT/best_flags.yaml` (for `train_enhanced.py --config`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from training.arguments import SCHEDULERS, ArgumentError, parse_unfreeze_schedule
from training.callbacks import FreezingCallback, validate_freeze_plan
from training.metrics import LOWER_IS_BETTER, TASK_METRICS
from training.search_space import Param, as_flag_value
from training.trainer import MultiTaskTrainer

logger = logging.getLogger(__name__)
PRUNERS = ("hyperband", "median", "none")
FINISHED = ("COMPLETE", "PRUNED")


@dataclass
class SearchArguments:
    """The search itself; every other flag is a flag of train_enhanced.py and fixes that part of each trial."""

    n_trials: int = field(default=20, metadata={"help": "Finished trials the study should hold (a rerun tops it up)."})
    search_space: str | None = field(default=None, metadata={"help": "YAML/JSON space (default: the built-in one)."})
    objective: str = field(default="score", metadata={
        "help": "What to optimise on validation: score (mean of each task's primary metric), TASK:METRIC, or a "
                "weighted mix TASK:METRIC=W,TASK:METRIC=W."})
    pruner: str = field(default="hyperband", metadata={"help": f"Pruner: one of {list(PRUNERS)}."})
    no_pruning: bool = field(default=False, metadata={"help": "Run every trial to its end (same as --pruner none)."})
    evals_per_epoch: int = field(default=4, metadata={"help": "Evaluations per epoch (the pruner acts at each)."})
    storage: str | None = field(default=None, metadata={
        "help": "Optuna storage URL (default: sqlite:///OUTPUT/study.db); a PostgreSQL URL for workers on several "
                "machines."})
    study_name: str = field(default="multitask", metadata={"help": "Name of the study in the storage."})
    timeout: float | None = field(default=None, metadata={"help": "Stop starting trials after this many seconds."})
    heartbeat_interval: int = field(default=20, metadata={
        "help": "Seconds between a running trial's heartbeats; a trial silent for three intervals (its process died) "
                "is marked failed and run again."})
    fast_trials: int = field(default=0, metadata={
        "help": "First run this many heads-only trials on the frozen-encoder embedding cache; their best settings are "
                "tried first in the fine-tuning trials."})

    def __post_init__(self):
        if self.n_trials < 1:
            raise ArgumentError(f"--n-trials {self.n_trials}: must be >= 1")
        if self.pruner not in PRUNERS:
            raise ArgumentError(f"--pruner {self.pruner!r}: choose one of {list(PRUNERS)}")
        if self.evals_per_epoch < 1 or self.fast_trials < 0 or self.heartbeat_interval < 1:
            raise ArgumentError("--evals-per-epoch and --heartbeat-interval must be >= 1, --fast-trials >= 0")
        if self.no_pruning:
            self.pruner = "none"


@dataclass(frozen=True)
class Objective:
    """A weighted sum of validation metrics (flat names such as `score` or `sentiment_macro_f1`)."""

    terms: tuple[tuple[str, float], ...]
    direction: str

    def value(self, metrics: dict[str, float]) -> float:
        """The objective from the Trainer's metrics (`eval_` prefix or not); an undefined metric is the worst value."""
        total = 0.0
        for name, weight in self.terms:
            value = metrics.get(f"eval_{name}", metrics.get(name))
            if value is None or not math.isfinite(value):
                return -math.inf if self.direction == "maximize" else math.inf
            total += weight * value
        return total


def parse_objective(text: str, tasks: list[dict]) -> Objective:
    """`score`, `TASK:METRIC` or `TASK:METRIC=W,...`; an unknown task or metric, or mixed directions, is an error."""
    if text.strip() == "score":
        return Objective((("score", 1.0),), "maximize")
    types = {t["name"]: t["type"] for t in tasks}
    terms, directions = [], set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        spec, _, weight = part.partition("=")
        task, _, metric = spec.partition(":")
        if task not in types:
            raise ArgumentError(f"--objective {text!r}: unknown task {task!r}; tasks are {sorted(types)}")
        if metric not in TASK_METRICS[types[task]]:
            raise ArgumentError(f"--objective {text!r}: {metric!r} is not a metric of {types[task]} task {task!r}; "
                                f"allowed: {list(TASK_METRICS[types[task]])}")
        try:
            terms.append((f"{task}_{metric}", float(weight) if weight else 1.0))
        except ValueError:
            raise ArgumentError(f"--objective {text!r}: weight {weight!r} is not a number") from None
        directions.add("minimize" if metric in LOWER_IS_BETTER else "maximize")
    if len(directions) != 1:
        raise ArgumentError(f"--objective {text!r}: give one metric, or metrics that all go the same way "
                            "(all higher-is-better or all lower-is-better)")
    return Objective(tuple(terms), directions.pop())


def with_objective(compute_metrics, objective: Objective):
    """`compute_metrics` plus `objective`, so the Trainer keeps the best checkpoint by it and reports it."""

    def compute(eval_pred) -> dict[str, float]:
        metrics = compute_metrics(eval_pred)
        metrics["objective"] = objective.value(metrics)
        return metrics

    return compute


def finished_trials(study) -> int:
    """Complete or pruned trials of the study, not counting the placeholders of workers that found it full."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state.name in FINISHED and not t.user_attrs.get("skipped"))


class SearchTrainer(MultiTaskTrainer):
    """`MultiTaskTrainer` whose trials apply every kind of parameter and whose value is the best evaluation."""

    def __init__(self, *args, search=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.search = search

    def _hp_search_setup(self, trial) -> None:
        super()._hp_search_setup(trial)  # the training arguments of `hp_space`
        if trial is not None and self.search is not None:
            self.search.apply_trial(self, trial)

    def train(self, resume_from_checkpoint=None, trial=None, **kwargs):
        if trial is None or self.search is None:
            return super().train(resume_from_checkpoint, trial=trial, **kwargs)
        self.search.before_trial(trial)
        completed = False
        try:
            output = super().train(resume_from_checkpoint, trial=trial, **kwargs)
            completed = True
            if self.state.best_metric is not None:
                self.objective = self.state.best_metric  # the best evaluation, as its checkpoint was loaded
        finally:
            self.search.after_trial(self, trial, pruned=not completed)
        return output


def normalize_trial_arguments(args) -> None:
    """What `__post_init__` derives, redone after a trial set fields directly (aliases, the unfreezing plan)."""
    args.lr_scheduler_type = SCHEDULERS.get(str(args.lr_scheduler_type), args.lr_scheduler_type)
    progressive = args.freeze_strategy == "progressive"
    args.unfreeze_plan = parse_unfreeze_schedule(args.unfreeze_schedule) if progressive else {}


def configure_freezing(trainer, depth: int) -> None:
    """Point the trainer's freezing callback at the trial's strategy; an impossible plan fails the trial."""
    args = trainer.args
    validate_freeze_plan(args.freeze_strategy, args.freeze_layers, args.unfreeze_plan, depth)
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, FreezingCallback):
            callback.configure(args.freeze_strategy, args.freeze_layers, args.unfreeze_plan)


def trial_values(space: dict[str, Param], trial) -> dict[str, Any]:
    """Every parameter of the space for this trial, as flag values."""
    return {name: as_flag_value(name, param.suggest(trial)) for name, param in space.items()}


def replace_fields(instance, values: dict[str, Any]):
    """A copy of an argument dataclass with `values` set (checked again by its `__post_init__`)."""
    known = {f.name for f in dataclasses.fields(instance) if f.init}
    return dataclasses.replace(instance, **{k: v for k, v in values.items() if k in known})
