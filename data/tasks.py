"""Task specifications: what to predict, from which column(s), with which labels and loss.

A `TaskSpec` comes from a `--task NAME:TYPE[:COLUMN[,COLUMN...]]` flag or from an entry of a tasks file
(see `data.sources`), and `to_config_dict()` gives the plain task schema dict stored in the model config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from data.validation import DataValidationError

TASK_TYPES = ("multiclass", "multilabel", "binary", "regression")
CLASSIFICATION_TYPES = ("multiclass", "multilabel", "binary")
LOSSES = {
    "multiclass": ("ce", "focal"),
    "multilabel": ("bce", "focal"),
    "binary": ("bce", "focal"),
    "regression": ("mse", "huber", "gaussian_nll"),
}
DEFAULT_LOSS = {"multiclass": "ce", "multilabel": "bce", "binary": "bce", "regression": "mse"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
# Keys a tasks-file entry may carry besides the schema keys.
_SPEC_ONLY_KEYS = ("column", "columns")


class TaskSpecError(DataValidationError):
    """A task definition (flag or tasks-file entry) is malformed."""


def label_key(name: str) -> str:
    """Batch / dataset column holding the labels of task `name` (same rule as `modeling.label_key`)."""
    return f"labels_{name}"


@dataclass
class TaskSpec:
    """One prediction task: its schema fields plus the source column(s) it reads by default."""

    name: str
    type: str
    columns: list[str] = field(default_factory=list)
    labels: list[str] | None = None
    loss: str | None = None
    focal_gamma: float = 2.0
    focal_alpha: list[float] | None = None
    label_smoothing: float = 0.0
    class_weights: list[float] | None = None
    pos_weight: list[float] | None = None
    weight: float = 1.0
    target_mean: list[float] | None = None
    target_std: list[float] | None = None
    output_range: list[float] | None = None
    huber_delta: float = 1.0

    def __post_init__(self) -> None:
        where = f"task {self.name!r}"
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise TaskSpecError(f"{where}: name must match [A-Za-z0-9_]+")
        if self.type not in TASK_TYPES:
            raise TaskSpecError(f"{where}: unknown type {self.type!r} (allowed: {', '.join(TASK_TYPES)})")
        if not self.columns:
            self.columns = [self.name]
        self.loss = self.loss or DEFAULT_LOSS[self.type]
        if self.loss not in LOSSES[self.type]:
            raise TaskSpecError(f"{where}: loss {self.loss!r} not allowed for {self.type} "
                                f"(allowed: {', '.join(LOSSES[self.type])})")
        if self.labels is not None:
            self.labels = [str(x) for x in self.labels]
            if len(set(self.labels)) != len(self.labels):
                raise TaskSpecError(f"{where}: duplicate label names in {self.labels}")
        if self.type == "binary" and self.labels is not None and len(self.labels) != 2:
            raise TaskSpecError(f"{where}: binary tasks need exactly 2 label names [negative, positive]")
        if self.type == "regression" and self.labels is None:
            self.labels = list(self.columns)
        self._check_numbers(where)

    def _check_numbers(self, where: str) -> None:
        if not self.weight > 0:
            raise TaskSpecError(f"{where}: weight must be > 0, got {self.weight}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise TaskSpecError(f"{where}: label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.label_smoothing and self.type == "regression":
            raise TaskSpecError(f"{where}: label_smoothing applies to classification tasks only")
        if self.output_range is not None:
            low_high = list(self.output_range)
            if self.type != "regression" or len(low_high) != 2 or not low_high[0] < low_high[1]:
                raise TaskSpecError(f"{where}: output_range must be [low, high] with low < high (regression only)")
        if self.target_std is not None and any(s <= 0 for s in self.target_std):
            raise TaskSpecError(f"{where}: target_std values must be > 0")

    @property
    def key(self) -> str:
        return label_key(self.name)

    @property
    def is_classification(self) -> bool:
        return self.type in CLASSIFICATION_TYPES

    @property
    def num_outputs(self) -> int:
        """Width of the label tensor: classes (multiclass), labels (multilabel), 1 (binary), outputs (regression)."""
        if self.type == "binary":
            return 1
        return len(self.labels or [])

    def to_config_dict(self) -> dict[str, Any]:
        """The task schema dict of the contract (every key present, defaults filled)."""
        labels = list(self.labels) if self.labels is not None else []
        if self.type == "binary" and not labels:
            labels = ["0", "1"]
        k = len(labels)
        return {
            "name": self.name,
            "type": self.type,
            "labels": labels,
            "loss": self.loss,
            "focal_gamma": float(self.focal_gamma),
            "focal_alpha": _floats(self.focal_alpha),
            "label_smoothing": float(self.label_smoothing),
            "class_weights": _floats(self.class_weights),
            "pos_weight": _floats(self.pos_weight),
            "weight": float(self.weight),
            "target_mean": _floats(self.target_mean or [0.0] * k) if self.type == "regression" else None,
            "target_std": _floats(self.target_std or [1.0] * k) if self.type == "regression" else None,
            "output_range": _floats(self.output_range),
            "huber_delta": float(self.huber_delta),
        }

    @classmethod
    def from_dict(cls, entry: dict[str, Any], where: str = "tasks file") -> TaskSpec:
        """Build from a tasks-file entry; `column` (str) or `columns` (str or list) name the default source."""
        if not isinstance(entry, dict):
            raise TaskSpecError(f"{where}: each task must be a mapping, got {type(entry).__name__}")
        known = set(cls.__dataclass_fields__) | set(_SPEC_ONLY_KEYS)
        unknown = sorted(set(entry) - known)
        if unknown:
            raise TaskSpecError(f"{where}: task {entry.get('name')!r} has unknown key(s) {unknown} "
                                f"(allowed: {', '.join(sorted(known))})")
        for required in ("name", "type"):
            if required not in entry:
                raise TaskSpecError(f"{where}: a task is missing the required key {required!r}")
        kwargs = {k: v for k, v in entry.items() if k not in _SPEC_ONLY_KEYS}
        cols = entry.get("columns", entry.get("column"))
        kwargs["columns"] = [cols] if isinstance(cols, str) else list(cols or [])
        try:
            return cls(**kwargs)
        except TaskSpecError as err:
            raise TaskSpecError(f"{where}: {err}") from None


def _floats(values: list[float] | None) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


def parse_task_flag(flag: str) -> TaskSpec:
    """Parse `NAME:TYPE[:COLUMN[,COLUMN...]]` (the `--task` flag)."""
    parts = flag.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise TaskSpecError(f"--task {flag!r}: expected NAME:TYPE[:COLUMN[,COLUMN...]] "
                            f"with TYPE one of {', '.join(TASK_TYPES)}")
    columns = [c.strip() for c in parts[2].split(",") if c.strip()] if len(parts) == 3 else []
    try:
        return TaskSpec(name=parts[0].strip(), type=parts[1].strip(), columns=columns)
    except TaskSpecError as err:
        raise TaskSpecError(f"--task {flag!r}: {err}") from None


def check_unique(tasks: list[TaskSpec]) -> None:
    """Task names must be unique (they become label keys and head names)."""
    seen: set[str] = set()
    for t in tasks:
        if t.name in seen:
            raise TaskSpecError(f"task name {t.name!r} is defined twice")
        seen.add(t.name)
    if not tasks:
        raise TaskSpecError("no task defined: give --task NAME:TYPE[:COLUMN] or a --tasks-file")
