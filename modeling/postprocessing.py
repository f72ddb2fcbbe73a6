"""Numpy-only decoding of raw head outputs into per-task predictions.

The one decoding path: calibration, metrics and reports (training side), `predict.py` (PyTorch and ONNX Runtime back
ends) and the `transformers` pipeline all turn logits into probabilities and decisions here, so a number in
`report.md` and a decision in `predict.py` come from the same code. It imports numpy and the task schema only, so it
travels with a saved model (Hub custom code) and works in an ONNX-only deployment without torch.

Output per task (one dict per text):
- multiclass: ``{"label": str, "probabilities": {label: p}}`` (softmax of logits / T, argmax)
- multilabel: ``{"labels": [str, ...], "probabilities": {label: p}}`` (sigmoid of logits / T, p >= threshold)
- binary: ``{"label": str, "probability": p}`` (p = P(labels[1]) = sigmoid(logit / T), positive when p >= threshold)
- regression: ``{"values": {output_name: v}}`` (the model already returns the user's units), plus
  ``{"std": {output_name: s}}`` for heads trained with `gaussian_nll` (their predicted standard deviation)
- with MC dropout (`decode_samples`): the mean over passes as above, plus ``"std"`` per label or output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .task_schema import CLASSIFICATION_TYPES

DEFAULT_THRESHOLD = 0.5


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row max so large logits do not overflow."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function, computed without overflow for large |x|."""
    out = np.empty_like(logits, dtype=np.float64)
    pos = logits >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-logits[pos]))
    exp = np.exp(logits[~pos])
    out[~pos] = exp / (1.0 + exp)
    return out


def probabilities(task_type: str, logits: np.ndarray, temperature: float | None = None) -> np.ndarray:
    """Softmax (multiclass) or sigmoid (multilabel, binary) of logits / T, in float64; T = 1 when None."""
    if task_type not in CLASSIFICATION_TYPES:
        raise ValueError(f"probabilities need a classification task type ({', '.join(CLASSIFICATION_TYPES)}), "
                         f"got {task_type!r}")
    temp = 1.0 if temperature is None else float(temperature)
    if temp <= 0:
        raise ValueError(f"temperature must be > 0, got {temp}")
    scaled = np.asarray(logits, dtype=np.float64) / temp
    return softmax(scaled) if task_type == "multiclass" else sigmoid(scaled)


def task_probabilities(task: Mapping[str, Any], logits: np.ndarray, temperature: float | None = None) -> np.ndarray:
    """`probabilities` for one task dict, with its name in the error message."""
    try:
        return probabilities(task["type"], logits, temperature)
    except ValueError as err:
        raise ValueError(f"task {task['name']!r}: {err}") from None


def threshold_labels(task: Mapping[str, Any]) -> list[str]:
    """The labels a task has thresholds for: every multilabel label, a binary task's positive label."""
    return list(task["labels"]) if task["type"] == "multilabel" else [task["labels"][1]]


def threshold_vector(task: Mapping[str, Any], thresholds: Mapping[str, float] | Sequence[float] | float | None = None
                     ) -> np.ndarray:
    """One threshold per `threshold_labels(task)`: 0.5 where none is given.

    `thresholds` may be None, one number for every label, a sequence in label order, or `{label: threshold}` (the
    form stored in `config.thresholds`).
    """
    names = threshold_labels(task)
    if thresholds is None:
        return np.full(len(names), DEFAULT_THRESHOLD)
    if isinstance(thresholds, Mapping):
        unknown = sorted(set(thresholds) - set(names))
        if unknown:
            raise ValueError(f"thresholds of task {task['name']!r} name unknown labels {unknown}; allowed: {names}")
        return np.array([float(thresholds.get(name, DEFAULT_THRESHOLD)) for name in names], dtype=np.float64)
    values = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if values.size == 1:
        return np.full(len(names), float(values[0]))
    if values.size != len(names):
        raise ValueError(f"task {task['name']!r}: got {values.size} thresholds for {len(names)} labels")
    return values


def _rows_multiclass(task: Mapping[str, Any], probs: np.ndarray) -> list[dict[str, Any]]:
    labels = list(task["labels"])
    best = probs.argmax(axis=-1)
    return [
        {"label": labels[int(b)], "probabilities": {name: float(p) for name, p in zip(labels, row)}}
        for b, row in zip(best, probs)
    ]


def _rows_multilabel(task: Mapping[str, Any], probs: np.ndarray, cut: np.ndarray) -> list[dict[str, Any]]:
    labels = list(task["labels"])
    chosen = probs >= cut[None, :]
    return [
        {
            "labels": [name for name, on in zip(labels, row_on) if on],
            "probabilities": {name: float(p) for name, p in zip(labels, row)},
        }
        for row, row_on in zip(probs, chosen)
    ]


def _rows_binary(task: Mapping[str, Any], probs: np.ndarray, cut: float) -> list[dict[str, Any]]:
    negative, positive = task["labels"][0], task["labels"][1]
    return [{"label": positive if p >= cut else negative, "probability": float(p)} for p in probs]


def std_output_name(task_name: str) -> str:
    """Key (and ONNX output name) of a `gaussian_nll` regression task's predicted standard deviation."""
    return f"std_{task_name}"


def decode_probabilities(task: Mapping[str, Any], probs: np.ndarray,
                         thresholds: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """Result rows from a classification task's probabilities (argmax, or each label against its threshold)."""
    if task["type"] == "multiclass":
        return _rows_multiclass(task, probs)
    cut = threshold_vector(task, thresholds)
    if task["type"] == "multilabel":
        return _rows_multilabel(task, probs, cut)
    return _rows_binary(task, probs.reshape(-1), float(cut[0]))


def _regression_rows(task: Mapping[str, Any], values: np.ndarray, std: np.ndarray | None) -> list[dict[str, Any]]:
    names = list(task["labels"])
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    rows = [{"values": {name: float(v) for name, v in zip(names, row)}} for row in values]
    if std is not None:
        std = np.asarray(std, dtype=np.float64).reshape(len(values), -1)
        for row, spread in zip(rows, std):
            row["std"] = {name: float(v) for name, v in zip(names, spread)}
    return rows


def decode_task(
    task: Mapping[str, Any],
    logits: np.ndarray,
    thresholds: Mapping[str, float] | None = None,
    temperature: float | None = None,
    std: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Turn one head's output (batch first) into one result dict per row, as described in the module docstring.

    `std`: a regression task's predicted standard deviation in the user's units (`gaussian_nll` heads)."""
    logits = np.asarray(logits)
    if task["type"] == "regression":
        return _regression_rows(task, logits, std)
    probs = task_probabilities(task, logits.reshape(-1) if task["type"] == "binary" else logits, temperature)
    return decode_probabilities(task, probs, thresholds)


def _check_rows(per_task: Mapping[str, list]) -> list[dict[str, dict[str, Any]]]:
    sizes = {name: len(rows) for name, rows in per_task.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"task outputs disagree on the batch size: {sizes}")
    n_rows = next(iter(sizes.values()), 0)
    return [{name: rows[i] for name, rows in per_task.items()} for i in range(n_rows)]


def decode_outputs(
    tasks: Sequence[Mapping[str, Any]],
    logits: Mapping[str, np.ndarray],
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
    temperatures: Mapping[str, float] | None = None,
) -> list[dict[str, dict[str, Any]]]:
    """Decode every head: returns one ``{task_name: result}`` dict per row, tasks in config order.

    `logits` may also hold `std_<task>` arrays (`std_output_name`) for regression tasks that predict their spread.
    """
    thresholds = thresholds or {}
    temperatures = temperatures or {}
    missing = [t["name"] for t in tasks if t["name"] not in logits]
    if missing:
        raise ValueError(f"model outputs lack tasks {missing}; got outputs for {sorted(logits)}")
    return _check_rows({
        t["name"]: decode_task(t, logits[t["name"]], thresholds.get(t["name"]), temperatures.get(t["name"]),
                               logits.get(std_output_name(t["name"])) if t["type"] == "regression" else None)
        for t in tasks})


def decode_samples(
    tasks: Sequence[Mapping[str, Any]],
    samples: Sequence[Mapping[str, np.ndarray]],
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
    temperatures: Mapping[str, float] | None = None,
) -> list[dict[str, dict[str, Any]]]:
    """Decode several stochastic passes (MC dropout) of the same rows: per task the mean probabilities (or values),
    decided as usual, plus their standard deviation across passes under `std`. A `gaussian_nll` head's own
    predicted spread is kept: its `std` is the total, sqrt(mean of predicted variances + variance across passes)."""
    thresholds, temperatures = thresholds or {}, temperatures or {}
    per_task = {}
    for task in tasks:
        name = task["name"]
        if task["type"] == "regression":
            stack = np.stack([np.asarray(s[name], dtype=np.float64) for s in samples])
            variance = stack.var(axis=0)
            if std_output_name(name) in samples[0]:
                predicted = np.stack([np.asarray(s[std_output_name(name)], dtype=np.float64) for s in samples])
                variance = variance + (predicted ** 2).mean(axis=0)
            per_task[name] = _regression_rows(task, stack.mean(axis=0), np.sqrt(variance))
            continue
        stack = np.stack([task_probabilities(task, np.asarray(s[name]), temperatures.get(name)) for s in samples])
        rows = decode_probabilities(task, stack.mean(axis=0), thresholds.get(name))
        labels = list(task["labels"]) if task["type"] != "binary" else [task["labels"][1]]
        for row, spread in zip(rows, stack.std(axis=0).reshape(len(rows), -1)):
            row["std"] = {label: float(v) for label, v in zip(labels, spread)}
        per_task[name] = rows
    return _check_rows(per_task)


def flatten_result(result: Mapping[str, Mapping[str, Any]], label_separator: str = "|") -> dict[str, Any]:
    """One flat row for CSV: ``<task>`` (label; multilabel labels joined), ``<task>_prob_<label>``,
    ``<task>_probability`` (binary), ``<task>_<output>`` (regression) and ``<task>_std_<label or output>``."""
    flat: dict[str, Any] = {}
    for name, res in result.items():
        flat.update({f"{name}_std_{key}": value for key, value in res.get("std", {}).items()})
        if "values" in res:
            flat.update({f"{name}_{key}": value for key, value in res["values"].items()})
            continue
        if "labels" in res:
            flat[name] = label_separator.join(res["labels"])
        else:
            flat[name] = res["label"]
        if "probability" in res:
            flat[f"{name}_probability"] = res["probability"]
        for label, p in res.get("probabilities", {}).items():
            flat[f"{name}_prob_{label}"] = p
    return flat
