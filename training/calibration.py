"""Probability calibration: temperature scaling, F1-optimal thresholds, expected calibration error.

Everything here works on plain numpy arrays in the label formats of the interface contract (multiclass: int class
index, -100 = missing; multilabel/binary: 0.0/1.0, -100 = missing per entry) so it can be used and tested without a
model. Fitting must happen on a split that did not pick the checkpoint (see `training.evaluation`).

Conventions (documented in the README):
- probabilities: multiclass softmax(logits / T); multilabel and binary sigmoid(logits / T).
- ECE uses `n_bins` (default 15) equal-width bins [k/n, (k+1)/n), the last one closed at 1.0, and is
  sum_b |B_b| / n * |accuracy(B_b) - confidence(B_b)|. Multiclass: top-label confidence vs. correctness.
  Multilabel/binary: every labelled (row, label) entry is one prediction; confidence = P(positive) and accuracy =
  the fraction of positives in the bin.
- thresholds: for each label every distinct score is a candidate cut (predict positive when p >= t); the best F1
  cut is found with one sort (O(n log n)); the stored threshold lies midway between the lowest score predicted
  positive and the next lower distinct score (at the score itself when every row is predicted positive).
  Ties in F1 go to the highest cut. A label without positives keeps 0.5 (F1 is undefined there).
- temperature: T minimises the mean NLL on the calibration rows, searched on log T in [log 0.05, log 20] with
  scipy's bounded scalar minimiser. With no labelled rows T stays 1.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_expit, log_softmax

from modeling.postprocessing import DEFAULT_THRESHOLD, probabilities, task_probabilities, threshold_labels
from modeling.task_schema import CLASSIFICATION_TYPES, IGNORE_INDEX, labelled_entries

DEFAULT_N_BINS = 15
TEMPERATURE_BOUNDS = (0.05, 20.0)


def check_binary_values(labels: np.ndarray, mask: np.ndarray, task_name: str) -> None:
    """Raise ValueError when a labelled multilabel/binary entry is neither 0 nor 1."""
    values = np.asarray(labels, dtype=np.float64)[mask]
    bad = values[(values != 0.0) & (values != 1.0)]
    if bad.size:
        raise ValueError(f"task {task_name!r}: label values must be 0, 1 or -100 (missing), found {bad[0]!r}")


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = DEFAULT_N_BINS) -> dict:
    """Per-bin count, mean confidence and accuracy over equal-width bins; empty bins give None."""
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=np.float64).ravel()
    index = np.clip(np.floor(confidence * n_bins).astype(int), 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(index, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf_mean, acc_mean = conf_sum / counts, acc_sum / counts
    return {
        "bin_edges": [k / n_bins for k in range(n_bins + 1)],
        "count": counts.astype(int).tolist(),
        "confidence": [float(c) if n else None for c, n in zip(conf_mean, counts)],
        "accuracy": [float(a) if n else None for a, n in zip(acc_mean, counts)],
    }


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = DEFAULT_N_BINS
                               ) -> float | None:
    """ECE over equal-width bins; None when there is nothing to measure."""
    bins = reliability_bins(confidence, correct, n_bins)
    total = sum(bins["count"])
    if total == 0:
        return None
    gaps = [n * abs(a - c) for n, a, c in zip(bins["count"], bins["accuracy"], bins["confidence"]) if n]
    return float(sum(gaps) / total)


def confidence_and_correct(task_type: str, probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (confidence, outcome) pairs that ECE and reliability diagrams are computed on, masked rows dropped."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if task_type == "multiclass":
        mask = labels != IGNORE_INDEX
        p, y = probs[mask], labels[mask].astype(int)
        return p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
    mask = labelled_entries(labels)
    return probs[mask], labels.astype(np.float64)[mask]


def negative_log_likelihood(task_type: str, logits: np.ndarray, labels: np.ndarray,
                            temperature: float | None = None) -> float | None:
    """Mean NLL of the labelled rows (multiclass) or entries (multilabel/binary); None when none is labelled."""
    scaled = np.asarray(logits, dtype=np.float64) / float(temperature or 1.0)
    labels = np.asarray(labels)
    if task_type == "multiclass":
        mask = labels != IGNORE_INDEX
        if not mask.any():
            return None
        log_p = log_softmax(scaled[mask], axis=1)
        return float(-log_p[np.arange(mask.sum()), labels[mask].astype(int)].mean())
    mask = labelled_entries(labels)
    if not mask.any():
        return None
    z, y = scaled[mask], labels.astype(np.float64)[mask]
    return float(-(y * log_expit(z) + (1.0 - y) * log_expit(-z)).mean())


def fit_temperature(task_type: str, logits: np.ndarray, labels: np.ndarray,
                    bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """Temperature T > 0 minimising the NLL of softmax/sigmoid(logits / T) on the labelled rows (1.0 if none)."""
    if task_type not in CLASSIFICATION_TYPES:
        raise ValueError(f"temperature scaling needs a classification task, got {task_type!r}")
    if negative_log_likelihood(task_type, logits, labels) is None:
        return 1.0
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(task_type, logits, labels, math.exp(log_t)),
        bounds=(math.log(bounds[0]), math.log(bounds[1])), method="bounded", options={"xatol": 1e-4},
    )
    best = math.exp(float(result.x))
    baseline = negative_log_likelihood(task_type, logits, labels, 1.0)
    return best if negative_log_likelihood(task_type, logits, labels, best) <= baseline else 1.0


def best_f1_threshold(scores: np.ndarray, targets: np.ndarray) -> tuple[float, float | None]:
    """(threshold, F1 there) maximising F1 of `scores >= threshold` over every distinct score as a cut.

    One descending sort, then cumulative true positives at the last row of each tie group: O(n log n).
    Without positives F1 is undefined everywhere: returns (0.5, None).
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    targets = np.asarray(targets, dtype=np.float64).ravel()
    n_pos = float(targets.sum())
    if scores.size == 0 or n_pos == 0:
        return DEFAULT_THRESHOLD, None
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], targets[order]
    group_end = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tp = np.cumsum(y)[group_end]
    predicted = group_end + 1.0
    f1 = 2.0 * tp / (predicted + n_pos)
    best = int(np.argmax(f1))
    cut = s[group_end[best]]
    if best + 1 < group_end.size:
        threshold = 0.5 * (cut + s[group_end[best + 1]])
    else:
        threshold = cut
    return float(threshold), float(f1[best])


def fit_thresholds(task: dict, logits: np.ndarray, labels: np.ndarray, temperature: float | None = None
                   ) -> tuple[dict[str, float], dict[str, dict]]:
    """Per-label F1-optimal thresholds on sigmoid(logits / T) for a multilabel or binary task.

    Returns ({label: threshold}, {label: {"f1": best F1 or None, "n": rows, "reason": why 0.5 was kept}}).
    Binary tasks have one entry keyed by the positive label name (`labels[1]`).
    """
    if task["type"] not in ("multilabel", "binary"):
        raise ValueError(f"task {task['name']!r}: thresholds are fitted for multilabel and binary tasks only, "
                         f"not {task['type']!r}")
    names = threshold_labels(task)
    probs = task_probabilities(task, logits, temperature).reshape(len(logits), -1)
    labels = np.asarray(labels, dtype=np.float64).reshape(len(logits), -1)
    mask = labelled_entries(labels)
    check_binary_values(labels, mask, task["name"])
    thresholds, details = {}, {}
    for j, name in enumerate(names):
        rows = mask[:, j]
        threshold, f1 = best_f1_threshold(probs[rows, j], labels[rows, j])
        thresholds[name] = threshold
        details[name] = {"f1": f1, "n": int(rows.sum())}
        if f1 is None:
            details[name]["reason"] = (f"label {name!r} has no positive example in the calibration split; "
                                       f"threshold kept at {DEFAULT_THRESHOLD}")
    return thresholds, details


def calibration_summary(task_type: str, logits: np.ndarray, labels: np.ndarray, temperature: float | None = None,
                        n_bins: int = DEFAULT_N_BINS) -> dict:
    """NLL, ECE and reliability bins at T = 1 (`*_before`) and at `temperature` (`*_after`); None if unlabelled."""
    t = float(temperature or 1.0)
    out: dict = {"temperature": t, "n_bins": n_bins}
    for tag, temp in (("before", 1.0), ("after", t)):
        conf, correct = confidence_and_correct(task_type, probabilities(task_type, logits, temp), labels)
        out[f"nll_{tag}"] = negative_log_likelihood(task_type, logits, labels, temp)
        out[f"ece_{tag}"] = expected_calibration_error(conf, correct, n_bins)
        out[f"reliability_{tag}"] = reliability_bins(conf, correct, n_bins)
    return out


def fit_task_calibration(task: dict, logits: np.ndarray, labels: np.ndarray) -> dict:
    """Temperature (then thresholds on the scaled probabilities) for one classification task, with NLL/ECE."""
    kind = task["type"]
    temperature = fit_temperature(kind, logits, labels)
    summary = calibration_summary(kind, logits, labels, temperature)
    result = {"temperature": temperature, **{k: summary[k] for k in ("nll_before", "ece_before", "nll_after",
                                                                       "ece_after")}}
    if kind in ("multilabel", "binary"):
        result["thresholds"], result["threshold_fit"] = fit_thresholds(task, logits, labels, temperature)
    return result
