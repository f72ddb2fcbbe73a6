"""The task schema: what one task is, from the moment it is parsed until it sits in `config.json`.

A task is a plain dict (JSON as it is) with the keys of `TASK_DEFAULTS`; `normalize_task` checks one and returns a
completed copy. The data package parses tasks files and `--task` flags into these dicts (`require_labels=False`
while label names still have to be inferred from the training split), the model config stores them, and metrics,
calibration, decoding and serving read them. This module imports neither torch nor transformers, so the ONNX
serving path can use it, and it travels with a saved model as Hub custom code.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable
from typing import Any, NoReturn

import numpy as np

TASK_TYPES = ("multiclass", "multilabel", "binary", "regression")
CLASSIFICATION_TYPES = ("multiclass", "multilabel", "binary")
SIGMOID_TYPES = ("multilabel", "binary")
# The first loss of each type is its default.
LOSSES_BY_TYPE = {
    "multiclass": ("ce", "focal"),
    "multilabel": ("bce", "focal"),
    "binary": ("bce", "focal"),
    "regression": ("mse", "huber", "gaussian_nll"),
}
# Missing label: this value for classes and 0/1 entries, NaN for regression targets.
IGNORE_INDEX = -100
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


class TaskSchemaError(ValueError):
    """A task dict that breaks the schema; the message starts with where (`tasks[i] ('name').field`)."""


def label_key(task_name: str) -> str:
    """Name of the batch key and dataset column that carry a task's labels (`labels_<task>`)."""
    return f"labels_{task_name}"


def _fail(where: str, message: str) -> NoReturn:
    raise TaskSchemaError(f"{where}: {message}")


def finite_float(where: str, value: Any) -> float:
    """`value` as a float; a `TaskSchemaError` naming `where` unless it is a finite number (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(where, f"expected a finite number, got {value!r}")
    return float(value)


def _float_list(where: str, value: Any, length: int, minimum: float | None = None, maximum: float | None = None):
    """A list of `length` finite floats (a single number is broadcast), each within [minimum, maximum]."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * length
    if not isinstance(value, (list, tuple)) or len(value) != length:
        _fail(where, f"expected a list of {length} numbers (one per output), got {value!r}")
    out = [finite_float(f"{where}[{i}]", v) for i, v in enumerate(value)]
    for i, v in enumerate(out):
        if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
            _fail(f"{where}[{i}]", f"must be in [{minimum}, {maximum}], got {v}")
    return out


def _check_labels(where: str, task_type: str, labels: Any, require: bool) -> list[str] | None:
    if labels is None and task_type == "binary" and require:
        labels = ["0", "1"]
    if labels is None:
        if require or task_type == "regression":
            _fail(f"{where}.labels", "missing: give the label names (regression: the output names)")
        return None
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


def _check_scalars(where: str, task: dict) -> None:
    """Loss choice and the scalar loss settings shared by every type; completes `task` in place."""
    allowed = LOSSES_BY_TYPE[task["type"]]
    task["loss"] = allowed[0] if task["loss"] is None else task["loss"]
    if task["loss"] not in allowed:
        _fail(f"{where}.loss", f"{task['loss']!r} is not a {task['type']} loss; allowed: {list(allowed)}")
    for key, low, strict in (("weight", 0.0, True), ("focal_gamma", 0.0, False), ("huber_delta", 0.0, True)):
        task[key] = finite_float(f"{where}.{key}", task[key])
        if task[key] < low or (strict and task[key] == low):
            _fail(f"{where}.{key}", f"must be {'>' if strict else '>='} {low:g}, got {task[key]}")
    task["label_smoothing"] = finite_float(f"{where}.label_smoothing", task["label_smoothing"])
    if not 0.0 <= task["label_smoothing"] < 1.0:
        _fail(f"{where}.label_smoothing", f"must be in [0, 1), got {task['label_smoothing']}")
    misplaced = {
        "class_weights": task["type"] != "multiclass",
        "pos_weight": task["type"] not in SIGMOID_TYPES,
        "focal_alpha": task["type"] == "regression",
        "target_mean": task["type"] != "regression",
        "target_std": task["type"] != "regression",
        "output_range": task["type"] != "regression",
    }
    for key, wrong in misplaced.items():
        if wrong and task[key] is not None:
            _fail(f"{where}.{key}", f"is not used by a {task['type']} task; leave it null")
    if task["type"] == "regression" and task["label_smoothing"] != 0.0:
        _fail(f"{where}.label_smoothing", "applies to classification tasks only; use 0.0 for regression")


def _check_vectors(where: str, task: dict, complete: bool) -> None:
    """Settings with one value per label or output (needs the label names); `complete` fills the regression
    scaling defaults (a draft leaves them unset, for the data side to fill from the training split)."""
    kind, n_out = task["type"], len(task["labels"])
    n_weights = 1 if kind == "binary" else n_out
    if task["focal_alpha"] is not None:
        top = 1.0 if kind in SIGMOID_TYPES else None
        task["focal_alpha"] = _float_list(f"{where}.focal_alpha", task["focal_alpha"], n_weights, 0.0, top)
    if task["class_weights"] is not None:
        task["class_weights"] = _float_list(f"{where}.class_weights", task["class_weights"], n_out, 1e-12)
    if task["pos_weight"] is not None:
        task["pos_weight"] = _float_list(f"{where}.pos_weight", task["pos_weight"], n_weights, 1e-12)
    if kind != "regression":
        return
    if complete:
        task["target_mean"] = [0.0] * n_out if task["target_mean"] is None else task["target_mean"]
        task["target_std"] = [1.0] * n_out if task["target_std"] is None else task["target_std"]
    if task["target_mean"] is not None:
        task["target_mean"] = _float_list(f"{where}.target_mean", task["target_mean"], n_out)
    if task["target_std"] is not None:
        task["target_std"] = _float_list(f"{where}.target_std", task["target_std"], n_out, 1e-12)
    if task["output_range"] is not None:
        low, high = _float_list(f"{where}.output_range", task["output_range"], 2)
        if not low < high:
            _fail(f"{where}.output_range", f"needs [low, high] with low < high, got {[low, high]}")
        task["output_range"] = [low, high]


def _check_name(where: str, name: Any) -> None:
    if not isinstance(name, str) or not TASK_NAME_PATTERN.match(name):
        _fail(f"{where}.name", f"must match [A-Za-z0-9_]+, got {name!r}")
    from torch import nn  # heads live in an nn.ModuleDict keyed by task name (validation runs beside torch)

    if hasattr(nn.ModuleDict, name):
        _fail(f"{where}.name", f"{name!r} is reserved (an attribute of torch.nn.ModuleDict); pick another task name")


def normalize_task(task: Any, index: int = 0, require_labels: bool = True, where: str | None = None) -> dict:
    """Check one task dict and return a completed copy (every key of `TASK_DEFAULTS` present).

    With `require_labels=False` a multiclass or multilabel task may leave `labels` unset (to be inferred from the
    training data); the per-label settings are then checked once the names are known. Messages start with
    `where` (default `tasks[<index>] ('<name>')`) and the field.
    """
    named_by_caller = where is not None
    where = where or f"tasks[{index}]"
    if not isinstance(task, dict):
        _fail(where, f"expected a dict with keys {list(TASK_DEFAULTS)}, got {type(task).__name__}")
    unknown = sorted(set(task) - set(TASK_DEFAULTS))
    if unknown:
        _fail(where, f"unknown key(s) {unknown}; allowed keys: {list(TASK_DEFAULTS)}")
    out = {**copy.deepcopy(TASK_DEFAULTS), **copy.deepcopy(task)}
    _check_name(where, out["name"])
    if not named_by_caller:
        where = f"{where} ({out['name']!r})"
    if out["type"] not in TASK_TYPES:
        _fail(f"{where}.type", f"{out['type']!r} is not a task type; allowed: {list(TASK_TYPES)}")
    out["labels"] = _check_labels(where, out["type"], out["labels"], require_labels)
    _check_scalars(where, out)
    if out["labels"] is not None:
        _check_vectors(where, out, require_labels)
    return out


def normalize_tasks(tasks: Any, require_labels: bool = True) -> list[dict]:
    """`normalize_task` on every entry of a non-empty list, plus unique names."""
    if not isinstance(tasks, (list, tuple)) or not tasks:
        _fail("tasks", f"expected a non-empty list of task dicts, got {tasks!r}")
    out = [normalize_task(task, i, require_labels) for i, task in enumerate(tasks)]
    names = [task["name"] for task in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        _fail("tasks", f"task names must be unique, duplicated: {duplicates}")
    return out


def find_task(tasks: Iterable[dict], name: str) -> dict:
    """The task called `name`; a `TaskSchemaError` listing the known names otherwise."""
    tasks = list(tasks)
    for task in tasks:
        if task["name"] == name:
            return task
    _fail("tasks", f"no task named {name!r}; known tasks: {[t['name'] for t in tasks]}")


def is_classification(task: dict) -> bool:
    return task["type"] in CLASSIFICATION_TYPES


def label_width(task: dict) -> int:
    """Columns of a task's label array: 0 for the 1-D types (multiclass, binary), else labels / outputs."""
    return 0 if task["type"] in ("multiclass", "binary") else len(task["labels"])


def head_output_size(task: dict) -> int:
    """Binary: 1 logit; regression: K (2K with a predicted log-variance); otherwise one logit per label."""
    if task["type"] == "binary":
        return 1
    if task["type"] == "regression" and task["loss"] == "gaussian_nll":
        return 2 * len(task["labels"])
    return len(task["labels"])


def missing_labels(task: dict, n: int) -> np.ndarray:
    """An all-missing label array of `n` rows: int64 (multiclass), float32 (binary (n,), others (n, width))."""
    if task["type"] == "multiclass":
        return np.full(n, IGNORE_INDEX, dtype=np.int64)
    fill = np.nan if task["type"] == "regression" else IGNORE_INDEX
    shape = (n,) if task["type"] == "binary" else (n, label_width(task))
    return np.full(shape, fill, dtype=np.float32)


def labelled_entries(labels: np.ndarray) -> np.ndarray:
    """True where an entry carries a label: neither the ignore index nor NaN (any task type)."""
    values = np.asarray(labels, dtype=np.float64)
    return (values != IGNORE_INDEX) & ~np.isnan(values)


def labelled_rows(labels: np.ndarray) -> np.ndarray:
    """Per row: True when the row carries at least one label entry."""
    entries = labelled_entries(labels)
    return entries.reshape(len(entries), -1).any(axis=1)


__all__ = [
    "CLASSIFICATION_TYPES", "IGNORE_INDEX", "LOSSES_BY_TYPE", "SIGMOID_TYPES", "TASK_DEFAULTS", "TASK_TYPES",
    "TaskSchemaError", "find_task", "finite_float", "head_output_size", "is_classification", "label_key",
    "label_width", "labelled_entries", "labelled_rows", "missing_labels", "normalize_task", "normalize_tasks",
]
