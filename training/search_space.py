"""The hyperparameter search space: flag names -> Optuna distributions, with a default sized for this toolkit.

A space is a mapping from a flag name of `train_enhanced.py` (dest form, e.g. `head_lr`) to a range:

    learning_rate: {type: float, low: 1.0e-5, high: 3.0e-4, log: true}
    freeze_layers: {type: int, low: 0, high: 4}
    pooling: {type: categorical, choices: [mean, cls, mean_max]}
    head_hidden_dims: {type: categorical, choices: ["256 128", "256", ""]}   # sizes as one string
    weighted_sampling: {type: categorical, choices: [false, true]}       # on: the first classification task

`load_space` checks every entry (known flag, known type, a non-empty range) and raises one `ArgumentError` line
before any trial starts. Which part of a run a parameter changes (the model, the data, the training arguments) is
decided here too, so the search applies each where it belongs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from training.arguments import ArgumentError, read_flag_file

PARAM_TYPES = ("float", "int", "categorical")
# Read by `model_init` (the model and its losses).
MODEL_PARAMS = ("pooling", "dropout", "head_hidden_dims", "head_layer_norm", "head_residual", "use_focal_loss",
                "focal_gamma", "label_smoothing", "class_weights", "class_weight_smoothing",
                "use_uncertainty_weighting", "loss_weighting")
# Applied to the prepared data of the trainer (no re-tokenization).
DATA_PARAMS = ("word_dropout", "word_dropout_rate", "word_swap", "weighted_sampling")
# Whatever else is searched must be a field of MultiTaskTrainingArguments.
HEADS_ONLY_PARAMS = ("head_lr", "weight_decay", "warmup_steps", "per_device_train_batch_size", "num_train_epochs",
                     "dropout", "head_hidden_dims", "head_residual", "head_layer_norm", "use_focal_loss",
                     "focal_gamma", "label_smoothing", "class_weights", "loss_weighting", "pooling",
                     "weighted_sampling")

DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "learning_rate": {"type": "float", "low": 2e-5, "high": 3e-4, "log": True},
    "head_lr": {"type": "float", "low": 1e-4, "high": 5e-3, "log": True},
    "layer_lr_decay": {"type": "float", "low": 0.7, "high": 1.0},
    "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
    "warmup_steps": {"type": "float", "low": 0.0, "high": 0.15},
    "per_device_train_batch_size": {"type": "categorical", "choices": [16, 32]},
    "freeze_strategy": {"type": "categorical", "choices": ["partial", "full", "none"]},
    "freeze_layers": {"type": "int", "low": 0, "high": 4},
    "pooling": {"type": "categorical", "choices": ["mean", "cls", "mean_max", "attention"]},
    "dropout": {"type": "float", "low": 0.0, "high": 0.3},
    "head_hidden_dims": {"type": "categorical", "choices": ["256 128", "256", "512 256", ""]},
    "head_residual": {"type": "categorical", "choices": [False, True]},
    "use_focal_loss": {"type": "categorical", "choices": [False, True]},
    "focal_gamma": {"type": "float", "low": 0.5, "high": 3.0},
    "label_smoothing": {"type": "float", "low": 0.0, "high": 0.15},
    "loss_weighting": {"type": "categorical", "choices": ["fixed", "uncertainty", "dwa"]},
    "word_dropout": {"type": "float", "low": 0.0, "high": 0.3},
    "weighted_sampling": {"type": "categorical", "choices": [False, True]},
}


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched flag: its Optuna distribution, in plain data."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple | None = None

    def suggest(self, trial) -> Any:
        """The trial's value (Optuna returns the same value whenever the same name is suggested again)."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)


def searchable_flags() -> set[str]:
    """Every flag a space may name: the fields of the three argument dataclasses."""
    from data.arguments import DataArguments
    from training.arguments import ModelArguments, MultiTaskTrainingArguments

    return {f.name for cls in (ModelArguments, DataArguments, MultiTaskTrainingArguments)
            for f in dataclasses.fields(cls) if f.init}


def parse_param(name: str, spec: Any, where: str) -> Param:
    """One entry of a space, checked: known type, a non-empty numeric range or non-empty choices."""
    if not isinstance(spec, dict) or spec.get("type") not in PARAM_TYPES:
        raise ArgumentError(f"{where}: {name}: expected {{type: float|int|categorical, ...}}, got {spec!r}")
    unknown = sorted(set(spec) - {"type", "low", "high", "log", "step", "choices"})
    if unknown:
        raise ArgumentError(f"{where}: {name}: unknown key(s) {unknown}; allowed: type, low, high, log, step, choices")
    if spec["type"] == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ArgumentError(f"{where}: {name}: a categorical parameter needs a non-empty list of choices")
        return Param(name, "categorical", choices=tuple(choices))
    low, high = spec.get("low"), spec.get("high")
    numbers = [v for v in (low, high, spec.get("step")) if v is not None]
    if low is None or high is None or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers):
        raise ArgumentError(f"{where}: {name}: needs finite numbers low and high, got low={low!r} high={high!r}")
    if not low < high:
        raise ArgumentError(f"{where}: {name}: empty range, low {low} must be < high {high}")
    if spec.get("log") and low <= 0:
        raise ArgumentError(f"{where}: {name}: a log range needs low > 0, got {low}")
    return Param(name, spec["type"], float(low), float(high), bool(spec.get("log", False)), spec.get("step"))


def load_space(path: str | None = None) -> dict[str, Param]:
    """The default space, or the YAML/JSON mapping at `path`, checked entry by entry."""
    where = f"--search-space {path}" if path else "default search space"
    raw = DEFAULT_SPACE if path is None else _read_mapping(path)
    allowed = searchable_flags() | set(DATA_PARAMS)
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ArgumentError(f"{where}: unknown parameter(s) {unknown}; names are flags of train_enhanced.py, e.g. "
                            "learning_rate, head_lr, pooling, dropout, freeze_strategy, word_dropout")
    if not raw:
        raise ArgumentError(f"{where}: the space is empty")
    return {name: parse_param(name, spec, where) for name, spec in raw.items()}


def _read_mapping(path: str) -> dict:
    content = read_flag_file(path, "--search-space")
    if not isinstance(content, dict):
        raise ArgumentError(f"--search-space {path}: expected a mapping of flag names to ranges")
    return content


def split_params(params: dict[str, Any]) -> tuple[dict, dict, dict]:
    """(model, data, training) parts of a trial's values."""
    model = {k: v for k, v in params.items() if k in MODEL_PARAMS}
    data = {k: v for k, v in params.items() if k in DATA_PARAMS}
    training = {k: v for k, v in params.items() if k not in MODEL_PARAMS and k not in DATA_PARAMS}
    return model, data, training


def as_flag_value(name: str, value: Any) -> Any:
    """A categorical encoding turned back into the flag's value (head sizes are written as one string)."""
    if name == "head_hidden_dims" and isinstance(value, str):
        return [int(size) for size in value.split()]
    return value


def check_space(space: dict[str, Param], depth: int, given: bool = True) -> dict[str, Param]:
    """Ranges that no trial could use with this encoder: refused in a given space, fitted in the default one."""
    layers = space.get("freeze_layers")
    if layers is None or layers.type == "categorical" or layers.high <= depth:
        return space
    if given:
        raise ArgumentError(f"--search-space: freeze_layers reaches {int(layers.high)}, but the encoder has {depth} "
                            "layers")
    return {**space, "freeze_layers": dataclasses.replace(layers, low=min(layers.low, depth - 1), high=float(depth))}


def data_arguments_for_space(space: dict[str, Param], data_args):
    """Searched augmentation needs the training split prepared with its on-the-fly transform: a searched
    probability is set to the top of its range here, and each trial then sets its own value."""
    values = {}
    for name in ("word_dropout", "word_swap"):
        param = space.get(name)
        if param is not None and not getattr(data_args, name):
            values[name] = max(param.choices) if param.type == "categorical" else param.high
    return dataclasses.replace(data_args, **values) if values else data_args
