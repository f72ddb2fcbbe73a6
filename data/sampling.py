"""Label counts and inverse-frequency sample weights for a weighted training sampler."""

from __future__ import annotations

import numpy as np

from modeling.task_schema import IGNORE_INDEX, labelled_entries


def label_counts(task: dict, values: np.ndarray) -> np.ndarray:
    """Labelled rows per class (multiclass), per label (multilabel positives), [neg, pos] (binary), per output."""
    if task["type"] == "multiclass":
        labelled = values[values != IGNORE_INDEX]
        return np.bincount(labelled, minlength=len(task["labels"])).astype(np.int64)
    if task["type"] == "binary":
        labelled = values[values != IGNORE_INDEX]
        return np.array([(labelled == 0).sum(), (labelled == 1).sum()], dtype=np.int64)
    if task["type"] == "multilabel":
        return (values == 1).sum(axis=0).astype(np.int64)
    return (~np.isnan(values)).sum(axis=0).astype(np.int64)


def labelled_entry_counts(values: np.ndarray) -> np.ndarray:
    """Labelled entries per column of a 2-D label array (per label / output), or the labelled rows of a 1-D one."""
    entries = labelled_entries(values)
    return entries.reshape(len(entries), -1).sum(axis=0).astype(np.int64)


def _inverse(counts: np.ndarray) -> np.ndarray:
    counts = counts.astype(np.float64)
    return np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)


def sample_weights(task: dict, values: np.ndarray, mode: str = "mean") -> np.ndarray:
    """Per-row weight proportional to the inverse frequency of the row's label(s), normalised to mean 1.

    multiclass / binary: 1 / count(class). multilabel: mean or max of 1 / count(label) over the row's positive
    labels (a labelled row with no positive label counts as the class "none"). Unlabelled rows get the mean weight
    of the labelled rows (neutral), so they are drawn as often as an average labelled row.
    """
    if task["type"] == "regression":
        raise ValueError(f"--weighted-sampling {task['name']}: needs a classification task, it is a regression task")
    if mode not in ("mean", "max"):
        raise ValueError(f"--weighted-sampling-mode must be mean or max, got {mode!r}")
    n = len(values)
    weights = np.full(n, np.nan)
    if task["type"] in ("multiclass", "binary"):
        mask = values != IGNORE_INDEX
        classes = values[mask].astype(np.int64)
        weights[mask] = _inverse(np.bincount(classes, minlength=2))[classes]
    else:
        mask = (values != IGNORE_INDEX).any(axis=1)
        positives = (values == 1) & mask[:, None]
        inv = _inverse(positives.sum(axis=0))
        has_pos = positives.any(axis=1)
        none_rows = mask & ~has_pos
        per_label = np.where(positives[has_pos], inv[None, :], np.nan)
        weights[has_pos] = np.nanmax(per_label, axis=1) if mode == "max" else np.nanmean(per_label, axis=1)
        weights[none_rows] = 1.0 / max(int(none_rows.sum()), 1)
    labelled = ~np.isnan(weights)
    if not labelled.any():
        raise ValueError(f"--weighted-sampling {task['name']}: no training row is labelled for this task")
    weights[labelled] /= weights[labelled].mean()
    weights[~labelled] = 1.0
    return weights
