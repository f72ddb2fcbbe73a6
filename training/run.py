"""One training run end to end: check -> data -> model -> train -> calibrate -> report -> save (-> push).

Each stage is its own function so `hyperparameter_search.py` and `train_ensemble.py` can stop after `fit` or swap the
model, and tests can call a stage alone. Validation (flags, then data) finishes before any weights are loaded.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets
from transformers import AutoTokenizer, set_seed

from data import DataArguments, PreparedData, prepare_data
from data.collator import EmbeddingCollator
from data.tokenization import tokenizer_fingerprint
from modeling.serving import without_environment_keys
from training.arguments import ArgumentError, ModelArguments, MultiTaskTrainingArguments
from training.balancing import balancing_callback
from training.checkpoints import finished_training, last_complete_checkpoint, planned_steps
from training.embedding_cache import cache_plan, cached_splits
from training.evaluation import run_evaluation, select_and_calibrate
from training.metrics import build_compute_metrics, flat_task_metrics
from training.model_card import push_folder_to_hub
from training.outputs import publish, recover_interrupted, staging_folder
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


@dataclass
class Evaluation:
    """What the final evaluation reads: the calibration and test splits and their collator (token ids, or the
    embedding cache's pooled vectors)."""

    calibrate: datasets.Dataset | None
    test: datasets.Dataset | None
    collator: object


def fit(model_args: ModelArguments, args: MultiTaskTrainingArguments, setup: Setup, model_init=None):
    """Build the model and trainer and train (or resume); returns (trainer, `Evaluation`)."""
    trainer, evaluation = build_run(model_args, args, setup, model_init)
    train_or_resume(trainer)
    return trainer, evaluation


def build_run(model_args: ModelArguments, args: MultiTaskTrainingArguments, setup: Setup, model_init=None):
    """Model (loss flags applied to the tasks), the splits it reads (token ids or cached embeddings) and a
    trainer ready to train; returns (trainer, `Evaluation`) without training."""
    data = setup.data
    tasks = configure_tasks(data.task_dicts(), model_args, data.train_labels)
    set_seed(args.seed)
    model = build_model(model_args, tasks, setup.backbone, data.max_length, setup.tokenizer.truncation_side)
    splits, collator = model_inputs(model, args, setup)
    select, calibrate = select_and_calibrate(splits, seed=data.split_seed)
    weights = data.sample_weights() if data.weighted_sampling else None
    if select is None and args.eval_strategy != "no":
        raise ArgumentError("no validation data: give --validation-file (or a single file to split), or set "
                            "--eval-strategy no --load-best-model-at-end false")
    balancing = balancing_callback(model_args.loss_weighting, args)
    trainer = build_trainer(model, args, splits["train"], select, collator, setup.tokenizer,
                            build_compute_metrics(model.config.tasks), weights, model_init, data.train_lengths,
                            data.augmenter, callbacks=[balancing] if balancing else None)
    return trainer, Evaluation(calibrate, splits["test"] if "test" in splits else None, collator)


def model_inputs(model, args: MultiTaskTrainingArguments, setup: Setup):
    """(splits, collator) the trainer reads: the token ids, or, where the embedding cache is valid, the frozen
    encoder's pooled vectors (built once by the main process, read by every process)."""
    data = setup.data
    augmented = data.augmenter is not None
    use, why = cache_plan(args.cache_embeddings, args.freeze_strategy, model.config.pooling, augmented)
    if not use:
        if args.cache_embeddings != "off":
            logger.info("embedding cache: not used (%s)", why)
        return data.tokenized, data.collator
    with args.main_process_first(desc="embedding cache"):
        splits = cached_splits(model.encoder, setup.tokenizer, tokenizer_fingerprint(setup.tokenizer),
                               data.max_length, data.raw, data.tokenized, args.embedding_cache_dir)
    return splits, EmbeddingCollator(model.config.tasks, model.config.pooling)


def train_or_resume(trainer: MultiTaskTrainer) -> None:
    """`trainer.train()`, from the last complete checkpoint under `--resume`; a run whose checkpoint shows that it
    had finished training is not trained further (its best or last weights are loaded for the final save)."""
    args = trainer.args
    if trainer.is_world_process_zero():
        recover_interrupted(args.output_dir)
    checkpoint = last_complete_checkpoint(args.output_dir) if args.resume else None
    if args.resume and checkpoint is None:
        logger.warning("--resume: no complete checkpoint in %s, starting from scratch", args.output_dir)
    per_epoch = max(len(trainer.get_train_dataloader()) // args.gradient_accumulation_steps, 1)
    if checkpoint is not None and finished_training(checkpoint, planned_steps(args.max_steps, args.num_train_epochs,
                                                                              per_epoch)):
        logger.info("--resume: %s had finished training; evaluating and saving only", checkpoint)
        restore_finished_run(trainer, checkpoint)
        return
    if checkpoint is not None:
        logger.info("--resume: continuing from %s", checkpoint)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)


def restore_finished_run(trainer: MultiTaskTrainer, checkpoint: Path) -> None:
    """Trainer state from `checkpoint` and the weights the run ended with (its best checkpoint when it kept one)."""
    from safetensors.torch import load_model
    from transformers import TrainerState

    trainer.state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    best = trainer.state.best_model_checkpoint
    source = Path(best) if trainer.args.load_best_model_at_end and best and Path(best).is_dir() else checkpoint
    load_model(trainer.model, str(source / "model.safetensors"))


def evaluate_and_save(trainer: MultiTaskTrainer, setup: Setup, evaluation: Evaluation, run_arguments: dict,
                      output_dir: str | Path | None = None) -> dict | None:
    """Fit thresholds/temperatures on the calibration split, report on test, save model + reports (+ push).

    Everything is written into a staging folder that replaces the output folder (`output_dir`, default
    `--output-dir`) only once it is complete.
    Under multi-process training only the main process calibrates, reports and saves; it returns None elsewhere.
    """
    args = trainer.args
    if not trainer.is_world_process_zero():
        return None
    output_dir = Path(output_dir or args.output_dir)
    staging = staging_folder(output_dir)
    test = evaluation.test if evaluation.test is not None else trainer.eval_dataset
    split = "test" if evaluation.test is not None else "validation (also used for checkpoint selection)"
    report = run_evaluation(trainer.model, test, evaluation.collator, staging, calibrate_dataset=evaluation.calibrate,
                            log_history=trainer.state.log_history, batch_size=args.per_device_eval_batch_size,
                            split=split)
    save_run(trainer, setup, report, run_arguments, staging)
    publish(staging, output_dir)
    if args.push_to_hub:
        url = push_folder_to_hub(output_dir, trainer.hub_model_id or args.hub_model_id, token=args.hub_token,
                                 private=args.hub_private_repo,
                                 commit_message="Multi-task model, thresholds and reports")
        logger.info("pushed %s to %s", output_dir, url)
    return report


def save_run(trainer: MultiTaskTrainer, setup: Setup, report: dict, run_arguments: dict, folder: Path) -> Path:
    """Model (with fitted thresholds/temperatures in its config), tokenizer, tasks, arguments, model card."""
    trainer.save_model(str(folder))
    write_json_atomic(folder / "tasks.json", trainer.model.config.tasks)
    write_json_atomic(folder / "arguments.json", run_arguments)
    trainer.create_model_card(report=report, data_description=describe_data(setup.data), folder=folder)
    return folder


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
