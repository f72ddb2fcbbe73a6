"""MultiTaskConfig: the backbone's config, the task list (plain JSON) and the head / pooling / loss settings.

Everything a saved model needs to rebuild itself lives here, so `from_pretrained` works without the original
checkpoint or this repository. Tasks are plain dicts (see `TASK_DEFAULTS`); every dict is validated and completed
with defaults when the config is built, so a bad value fails early with a `ValueError` naming the field.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import field
from typing import Any, ClassVar

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

TASK_TYPES = ("multiclass", "multilabel", "binary", "regression")
CLASSIFICATION_TYPES = ("multiclass", "multilabel", "binary")
SIGMOID_TYPES = ("multilabel", "binary")
LOSSES_BY_TYPE = {
    "multiclass": ("ce", "focal"),
    "multilabel": ("bce", "focal"),
    "binary": ("bce", "focal"),
    "regression": ("mse", "huber", "gaussian_nll"),
}
POOLING_OPTIONS = ("cls", "mean", "max", "mean_max", "attention")
LOSS_WEIGHTING_OPTIONS = ("fixed", "uncertainty")
HEAD_ACTIVATIONS = ("gelu", "relu", "tanh", "silu")
TASK_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")

# Every key a task dict may hold, with its default (`labels` and `loss` defaults depend on the type).
TASK_DEFAULTS: dict[str, Any] = {
    "name": None,
    "type": None,
    "labels": None,
    "loss": None,
    "focal_gamma": 2.0,
    "focal_alpha": None,
    "label_smoothing": 0.0,
    "class_weights": None,
    "pos_weight": None,
    "weight": 1.0,
    "target_mean": None,
    "target_std": None,
    "output_range": None,
    "huber_delta": 1.0,
}


def label_key(task_name: str) -> str:
    """Name of the batch key that carries a task's labels (`labels_<task>`)."""
    return f"labels_{task_name}"


def _fail(where: str, message: str) -> None:
    raise ValueError(f"{where}: {message}")


def _as_float(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(where, f"expected a finite number, got {value!r}")
    return float(value)


def _float_list(where: str, value: Any, length: int, minimum: float | None = None, maximum: float | None = None):
    """A list of `length` finite floats (a single number is broadcast), each within [minimum, maximum]."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * length
    if not isinstance(value, (list, tuple)) or len(value) != length:
        _fail(where, f"expected a list of {length} numbers (one per output), got {value!r}")
    out = [_as_float(f"{where}[{i}]", v) for i, v in enumerate(value)]
    for i, v in enumerate(out):
        if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
            _fail(f"{where}[{i}]", f"must be in [{minimum}, {maximum}], got {v}")
    return out


def _check_labels(where: str, task_type: str, labels: Any) -> list[str]:
    if labels is None and task_type == "binary":
        labels = ["0", "1"]
    if not isinstance(labels, (list, tuple)) or any(isinstance(x, (list, tuple, dict)) or x is None for x in labels):
        _fail(f"{where}.labels", f"expected a list of names, got {labels!r}")
    labels = [str(x) for x in labels]
    if len(set(labels)) != len(labels):
        _fail(f"{where}.labels", f"names must be unique, got {labels}")
    if task_type == "regression" and not labels:
        _fail(f"{where}.labels", "a regression task needs at least one output name (e.g. ['V', 'A', 'D'])")
    if task_type == "binary" and len(labels) != 2:
        _fail(f"{where}.labels", f"a binary task needs exactly 2 names [negative, positive], got {labels}")
    if task_type in ("multiclass", "multilabel") and len(labels) < 2:
        _fail(f"{where}.labels", f"a {task_type} task needs at least 2 labels (use type 'binary' for one yes/no "
                                 f"flag), got {labels}")
    return labels


def _check_loss_settings(where: str, task: dict) -> None:
    """Loss fields shared by all types, plus the per-type ones; completes `task` in place."""
    task_type, n_out = task["type"], len(task["labels"])
    allowed = LOSSES_BY_TYPE[task_type]
    task["loss"] = allowed[0] if task["loss"] is None else task["loss"]
    if task["loss"] not in allowed:
        _fail(f"{where}.loss", f"{task['loss']!r} is not a {task_type} loss; allowed: {list(allowed)}")
    task["weight"] = _as_float(f"{where}.weight", task["weight"])
    if task["weight"] <= 0:
        _fail(f"{where}.weight", f"must be > 0, got {task['weight']}")
    task["focal_gamma"] = _as_float(f"{where}.focal_gamma", task["focal_gamma"])
    if task["focal_gamma"] < 0:
        _fail(f"{where}.focal_gamma", f"must be >= 0, got {task['focal_gamma']}")
    task["huber_delta"] = _as_float(f"{where}.huber_delta", task["huber_delta"])
    if task["huber_delta"] <= 0:
        _fail(f"{where}.huber_delta", f"must be > 0, got {task['huber_delta']}")
    task["label_smoothing"] = _as_float(f"{where}.label_smoothing", task["label_smoothing"])
    if not 0.0 <= task["label_smoothing"] < 1.0:
        _fail(f"{where}.label_smoothing", f"must be in [0, 1), got {task['label_smoothing']}")
    n_weights = 1 if task_type == "binary" else n_out
    if task["focal_alpha"] is not None:
        top = 1.0 if task_type in SIGMOID_TYPES else None
        task["focal_alpha"] = _float_list(f"{where}.focal_alpha", task["focal_alpha"], n_weights, 0.0, top)
    if task["class_weights"] is not None:
        task["class_weights"] = _float_list(f"{where}.class_weights", task["class_weights"], n_out, 1e-12)
    if task["pos_weight"] is not None:
        task["pos_weight"] = _float_list(f"{where}.pos_weight", task["pos_weight"], n_weights, 1e-12)


def _check_type_specific(where: str, task: dict) -> None:
    """Reject settings that make no sense for the task's type; fill the regression standardisation."""
    task_type, n_out = task["type"], len(task["labels"])
    misplaced = {
        "class_weights": task_type != "multiclass",
        "pos_weight": task_type not in SIGMOID_TYPES,
        "focal_alpha": task_type == "regression",
        "target_mean": task_type != "regression",
        "target_std": task_type != "regression",
        "output_range": task_type != "regression",
    }
    for key, wrong in misplaced.items():
        if wrong and task[key] is not None:
            _fail(f"{where}.{key}", f"is not used by a {task_type} task; leave it null")
    if task_type == "regression" and task["label_smoothing"] != 0.0:
        _fail(f"{where}.label_smoothing", "applies to classification tasks only; use 0.0 for regression")
    if task_type != "regression":
        return
    mean = [0.0] * n_out if task["target_mean"] is None else task["target_mean"]
    std = [1.0] * n_out if task["target_std"] is None else task["target_std"]
    task["target_mean"] = _float_list(f"{where}.target_mean", mean, n_out)
    task["target_std"] = _float_list(f"{where}.target_std", std, n_out, 1e-12)
    if task["output_range"] is not None:
        low, high = _float_list(f"{where}.output_range", task["output_range"], 2)
        if not low < high:
            _fail(f"{where}.output_range", f"needs [low, high] with low < high, got {[low, high]}")
        task["output_range"] = [low, high]


def normalize_task(task: Any, index: int = 0) -> dict:
    """Validate one task dict and return a completed copy (every key of `TASK_DEFAULTS` present)."""
    where = f"tasks[{index}]"
    if not isinstance(task, dict):
        _fail(where, f"expected a dict with keys {list(TASK_DEFAULTS)}, got {type(task).__name__}")
    unknown = sorted(set(task) - set(TASK_DEFAULTS))
    if unknown:
        _fail(where, f"unknown key(s) {unknown}; allowed keys: {list(TASK_DEFAULTS)}")
    out = {**copy.deepcopy(TASK_DEFAULTS), **copy.deepcopy(task)}
    name = out["name"]
    if not isinstance(name, str) or not TASK_NAME_PATTERN.match(name):
        _fail(f"{where}.name", f"must match [A-Za-z0-9_]+, got {name!r}")
    _check_name_is_usable(f"{where}.name", name)
    where = f"tasks[{index}] ({name!r})"
    if out["type"] not in TASK_TYPES:
        _fail(f"{where}.type", f"{out['type']!r} is not a task type; allowed: {list(TASK_TYPES)}")
    out["labels"] = _check_labels(where, out["type"], out["labels"])
    _check_loss_settings(where, out)
    _check_type_specific(where, out)
    return out


def _check_name_is_usable(where: str, name: str) -> None:
    """Heads live in an `nn.ModuleDict` keyed by task name, so the name must not shadow one of its attributes."""
    from torch import nn

    if hasattr(nn.ModuleDict, name):
        _fail(where, f"{name!r} is reserved (an attribute of torch.nn.ModuleDict); pick another task name")


class MultiTaskConfig(PreTrainedConfig):
    r"""
    Configuration of a [`MultiTaskModel`]: one shared encoder, one head per task.

    Args:
        encoder_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of the backbone encoder (any `AutoModel` encoder), kept nested so a saved model rebuilds its
            encoder without the original checkpoint. Defaults to a BERT config.
        encoder_name_or_path (`str`, *optional*):
            Where the backbone came from (for tokenizers and model cards); not needed to load the model.
        tasks (`list[dict]`, *optional*):
            The task dicts (schema in `TASK_DEFAULTS`). `None` means "not set yet"; an empty list is an error.
        pooling (`str`, *optional*, defaults to `"mean"`):
            One of `cls`, `mean`, `max`, `mean_max`, `attention`.
        head_hidden_dims (`list[int]`, *optional*, defaults to `[256, 128]`):
            Hidden layer sizes of every task head (empty: a single linear layer).
        head_dropout (`float`, *optional*, defaults to 0.3): dropout in the heads.
        head_layer_norm (`bool`, *optional*, defaults to `True`): LayerNorm after each hidden Linear.
        head_residual (`bool`, *optional*, defaults to `False`): residual connection around each hidden block.
        head_activation (`str`, *optional*, defaults to `"gelu"`): one of `gelu`, `relu`, `tanh`, `silu`.
        loss_weighting (`str`, *optional*, defaults to `"fixed"`): `fixed` or `uncertainty` (Kendall et al. 2018).
        thresholds (`dict[str, dict[str, float]]`, *optional*):
            Per-label decision thresholds of multilabel / binary tasks (binary: keyed by the positive label).
        temperatures (`dict[str, float]`, *optional*): per-task softmax / sigmoid temperatures.
        initializer_range (`float`, *optional*, defaults to 0.02): std of the normal init of the head weights.
    """

    model_type = "multitask_text"
    sub_configs_defaults = {"encoder_config": SubConfigSpec(config_class=AutoConfig, model_type="bert")}
    # The Trainer drops these output keys at prediction time, so `predictions` is the `{task: logits}` dict.
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["task_losses", "pooled_output", "log_variances"]

    encoder_config: dict | PreTrainedConfig | None = None
    encoder_name_or_path: str | None = None
    tasks: list[dict] | None = None
    pooling: str = "mean"
    head_hidden_dims: list[int] = field(default_factory=lambda: [256, 128])
    head_dropout: float = 0.3
    head_layer_norm: bool = True
    head_residual: bool = False
    head_activation: str = "gelu"
    loss_weighting: str = "fixed"
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    temperatures: dict[str, float] = field(default_factory=dict)
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.check_multitask_fields()

    def validate(self) -> None:
        """Run transformers' own checks plus ours (also at `save_pretrained`, after calibration edited the config)."""
        super().validate()
        self.check_multitask_fields()

    def check_multitask_fields(self) -> None:
        """Validate every field of this class; tasks are completed with their defaults."""
        if self.tasks is not None:
            if not isinstance(self.tasks, (list, tuple)) or not self.tasks:
                _fail("tasks", f"expected a non-empty list of task dicts, got {self.tasks!r}")
            self.tasks = [normalize_task(task, i) for i, task in enumerate(self.tasks)]
            names = [task["name"] for task in self.tasks]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                _fail("tasks", f"task names must be unique, duplicated: {duplicates}")
        self._check_choice("pooling", self.pooling, POOLING_OPTIONS)
        self._check_choice("loss_weighting", self.loss_weighting, LOSS_WEIGHTING_OPTIONS)
        self._check_choice("head_activation", self.head_activation, HEAD_ACTIVATIONS)
        dims = self.head_hidden_dims
        if not isinstance(dims, (list, tuple)) or any(isinstance(d, bool) or not isinstance(d, int) or d < 1
                                                       for d in dims):
            _fail("head_hidden_dims", f"expected a list of positive ints (e.g. [256, 128]), got {dims!r}")
        self.head_hidden_dims = list(dims)
        dropout = _as_float("head_dropout", self.head_dropout)
        if not 0.0 <= dropout < 1.0:
            _fail("head_dropout", f"must be in [0, 1), got {dropout}")
        for flag in ("head_layer_norm", "head_residual"):
            if not isinstance(getattr(self, flag), bool):
                _fail(flag, f"expected true or false, got {getattr(self, flag)!r}")
        self._check_thresholds()
        self._check_temperatures()

    @staticmethod
    def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            _fail(name, f"{value!r} is not supported; allowed: {list(allowed)}")

    def _check_thresholds(self) -> None:
        if not isinstance(self.thresholds, dict):
            _fail("thresholds", f"expected {{task: {{label: float}}}}, got {self.thresholds!r}")
        for task_name, per_label in self.thresholds.items():
            task = self._task_for("thresholds", task_name, SIGMOID_TYPES)
            allowed = task["labels"][1:] if task["type"] == "binary" else task["labels"]
            if not isinstance(per_label, dict):
                _fail(f"thresholds[{task_name!r}]", f"expected {{label: float}}, got {per_label!r}")
            for label, value in per_label.items():
                if label not in allowed:
                    _fail(f"thresholds[{task_name!r}]", f"unknown label {label!r}; allowed: {allowed}")
                value = _as_float(f"thresholds[{task_name!r}][{label!r}]", value)
                if not 0.0 <= value <= 1.0:
                    _fail(f"thresholds[{task_name!r}][{label!r}]", f"must be in [0, 1], got {value}")

    def _check_temperatures(self) -> None:
        if not isinstance(self.temperatures, dict):
            _fail("temperatures", f"expected {{task: float}}, got {self.temperatures!r}")
        for task_name, value in self.temperatures.items():
            self._task_for("temperatures", task_name, CLASSIFICATION_TYPES)
            if _as_float(f"temperatures[{task_name!r}]", value) <= 0:
                _fail(f"temperatures[{task_name!r}]", f"must be > 0, got {value}")

    def _task_for(self, field_name: str, task_name: str, types: tuple[str, ...]) -> dict:
        allowed = [t["name"] for t in self.tasks or [] if t["type"] in types]
        if task_name not in allowed:
            _fail(field_name, f"unknown task {task_name!r}; allowed (tasks of type {list(types)}): {allowed}")
        return self.get_task(task_name)

    @property
    def task_names(self) -> list[str]:
        """Task names in config order (also the order of `label_names` and of `EvalPrediction.label_ids`)."""
        return [task["name"] for task in self.tasks or []]

    def get_task(self, name: str) -> dict:
        """The completed task dict called `name`."""
        for task in self.tasks or []:
            if task["name"] == name:
                return task
        raise ValueError(f"tasks: no task named {name!r}; known tasks: {self.task_names}")


__all__ = ["MultiTaskConfig", "label_key", "normalize_task", "TASK_TYPES", "POOLING_OPTIONS", "LOSSES_BY_TYPE"]
