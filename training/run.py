"""One training run end to end: check -> data -> model -> train -> calibrate -> report -> save (-> push).

Each stage is its own function so `hyperparameter_search.py` and `train_ensemble.py` can stop after `fit` or swap the
model, and tests can call a stage alone. Validation (flags, then data) finishes before any weights are loaded.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from transformers import AutoTokenizer, set_seed
from transformers.trainer_utils import get_last_checkpoint

from data import DataArguments, PreparedData, prepare_data
from modeling.serving import without_environment_keys
from training.arguments import ArgumentError, ModelArguments, MultiTaskTrainingArguments
from training.evaluation import run_evaluation, select_and_calibrate
from training.metrics import build_compute_metrics, flat_task_metrics
from training.recipe import (
    build_model,
    build_trainer,
    check_arguments,
    configure_tasks,
    encoder_depth,
    resolve_backbone,
)
from training.reporting import write_json_atomic
from training.trainer import MultiTaskTrainer

logger = logging.getLogger(__name__)
SUMMARY_METRICS = {
    "multiclass": ("accuracy", "macro_f1", "weighted_f1"),
    "multilabel": ("micro_f1", "macro_f1", "samples_f1"),
    "binary": ("accuracy", "f1", "roc_auc"),
    "regression": ("pearson", "ccc", "mae"),
}


@dataclass
class Setup:
    """What the checks and the data stage produce: everything `fit` needs besides the flags."""

    backbone: str
    tokenizer: object
    data: PreparedData


def prepare(model_args: ModelArguments, data_args: DataArguments, args: MultiTaskTrainingArguments) -> Setup:
    """Flag checks (encoder config only), tokenizer, validated and tokenized data, then the task-level checks."""
    backbone = resolve_backbone(model_args.backbone)
    depth = encoder_depth(backbone)
    check_arguments(model_args, data_args, args, depth)
    tokenizer = without_environment_keys(AutoTokenizer.from_pretrained(backbone))
    data = prepare_data(data_args, tokenizer, seed=args.seed)
    for warning in data.warnings:
        logger.warning(warning)
    check_arguments(model_args, data_args, args, depth, task_names=data.task_names)
    return Setup(backbone, tokenizer, data)


def fit(model_args: ModelArguments, args: MultiTaskTrainingArguments, setup: Setup, model_init=None):
    """Build the model and trainer and train; returns (trainer, calibration split or None)."""
    data = setup.data
    select, calibrate = select_and_calibrate(data.tokenized, seed=args.seed)
    tasks = configure_tasks(data.task_dicts(), model_args, data.train_labels)
    set_seed(args.seed)
    model = build_model(model_args, tasks, setup.backbone, data.max_length, setup.tokenizer.truncation_side)
    weights = data.sample_weights() if data.weighted_sampling else None
    if select is None and args.eval_strategy != "no":
        raise ArgumentError("no validation data: give --validation-file (or a single file to split), or set "
                            "--eval-strategy no --load-best-model-at-end false")
    trainer = build_trainer(model, args, data.tokenized["train"], select, data.collator, setup.tokenizer,
                            build_compute_metrics(model.config.tasks), weights, model_init)
    resume = get_last_checkpoint(args.output_dir) if args.resume and os.path.isdir(args.output_dir) else None
    if args.resume and resume is None:
        logger.warning("--resume: no checkpoint in %s, starting from scratch", args.output_dir)
    trainer.train(resume_from_checkpoint=resume)
    return trainer, calibrate


def evaluate_and_save(trainer: MultiTaskTrainer, setup: Setup, calibrate, run_arguments: dict) -> dict | None:
    """Fit thresholds/temperatures on the calibration split, report on test, save model + reports (+ push).

    Under multi-process training only the main process calibrates, reports and saves; it returns None elsewhere.
    """
    args, data = trainer.args, setup.data
    report = None
    if trainer.is_world_process_zero():
        test = data.tokenized["test"] if "test" in data.tokenized else trainer.eval_dataset
        split = "test" if "test" in data.tokenized else "validation (also used for checkpoint selection)"
        report = run_evaluation(trainer.model, test, data.collator, args.output_dir, calibrate_dataset=calibrate,
                                log_history=trainer.state.log_history, batch_size=args.per_device_eval_batch_size,
                                split=split)
        save_run(trainer, setup, report, run_arguments)
    if args.push_to_hub:  # the Trainer re-saves and rewrites the card through our create_model_card
        trainer.push_to_hub(commit_message="Multi-task model, thresholds and reports", report=report,
                            data_description=describe_data(data))
    return report


def save_run(trainer: MultiTaskTrainer, setup: Setup, report: dict, run_arguments: dict) -> Path:
    """Model (with fitted thresholds/temperatures in its config), tokenizer, tasks, arguments, model card."""
    output_dir = Path(trainer.args.output_dir)
    trainer.save_model(str(output_dir))
    write_json_atomic(output_dir / "tasks.json", trainer.model.config.tasks)
    write_json_atomic(output_dir / "arguments.json", run_arguments)
    trainer.create_model_card(report=report, data_description=describe_data(setup.data))
    return output_dir


def describe_data(data: PreparedData) -> dict:
    """Split sizes and label coverage, for the model card and the log."""
    sizes = {split: len(dataset) for split, dataset in data.raw.items()}
    return {"splits": sizes, "tasks": data.task_names}


def run_arguments(model_args: ModelArguments, data_args: DataArguments, args: MultiTaskTrainingArguments) -> dict:
    """All flags of a run as JSON-safe data (saved as arguments.json)."""
    return json.loads(json.dumps({"model": asdict(model_args), "data": asdict(data_args), "training": args.to_dict()},
                                 default=str))


def format_summary(report: dict) -> str:
    """A per-task table of the main test metrics (fitted thresholds; 0.5 in brackets where they differ)."""
    lines = [f"Results on {report['split']} ({report['n_rows']} rows); score {_fmt(report.get('score'))}",
             f"{'task':<16} {'type':<11} {'metric':<12} {'value':>8}"]
    for name, task in report["tasks"].items():
        fitted, at_half = flat_task_metrics(task), flat_task_metrics(task, fitted=False)
        for metric in SUMMARY_METRICS[task["type"]]:
            value = _fmt(fitted.get(metric))
            if metric in at_half and at_half[metric] != fitted.get(metric):
                value += f" (0.5: {_fmt(at_half[metric])})"
            lines.append(f"{name:<16} {task['type']:<11} {metric:<12} {value:>8}")
    return "\n".join(lines)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
