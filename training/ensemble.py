"""Ensemble weights per task: greedy ensemble selection with replacement (Caruana et al. 2004), bagged.

Each task is scored by its own primary metric on held-out predictions, because a member can be best at one head
and worst at another. Selection starts from an empty bag and adds, `rounds` times, the member (repeats allowed)
whose addition gives the best score of the bag's average; a member's weight is its share of the bag. Running the
selection on `bags` bootstrap samples of the held-out rows and averaging the weights keeps it from fitting the
held-out set's noise. Everything works on cached arrays (logits per member), so refitting takes seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modeling.postprocessing import probabilities
from training.metrics import primary_score

_EPS = 1e-7


def member_outputs(task: dict, logits: np.ndarray) -> np.ndarray:
    """What members are averaged on: probabilities (classification, T = 1) or values (regression)."""
    if task["type"] == "regression":
        return np.asarray(logits, dtype=np.float64)
    return probabilities(task["type"], logits)


def as_logits(task: dict, averaged: np.ndarray) -> np.ndarray:
    """An average of probabilities as logits again (log-probabilities, log-odds), as the ensemble model returns
    it; regression values as they are."""
    if task["type"] == "regression":
        return averaged
    if task["type"] == "multiclass":
        return np.log(np.clip(averaged, _EPS, None))
    clipped = np.clip(averaged, _EPS, 1 - _EPS)
    return np.log(clipped) - np.log1p(-clipped)


def weighted_average(outputs: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    return np.tensordot(weights, np.stack(outputs), axes=1)


def score(task: dict, averaged: np.ndarray, labels: np.ndarray) -> float:
    value = primary_score(task, as_logits(task, averaged), labels)
    return -np.inf if value is None else value


def greedy_selection(task: dict, outputs: Sequence[np.ndarray], labels: np.ndarray, rounds: int) -> np.ndarray:
    """How often each member was picked in `rounds` greedy additions (ties: the lower member index)."""
    counts = np.zeros(len(outputs))
    total = np.zeros_like(outputs[0])
    for _ in range(rounds):
        scores = [score(task, (total + out) / (counts.sum() + 1), labels) for out in outputs]
        best = int(np.argmax(scores))
        counts[best] += 1
        total = total + outputs[best]
    return counts


def selection_weights(task: dict, logits: Sequence[np.ndarray], labels: np.ndarray, rounds: int = 25,
                      bags: int = 20, seed: int = 0) -> list[float]:
    """Bagged greedy selection: the average, over `bags` bootstrap samples of the rows, of the members' shares.

    With `bags=0` the selection runs once on all rows.
    """
    outputs = [member_outputs(task, member) for member in logits]
    labels = np.asarray(labels)
    if bags == 0:
        counts = greedy_selection(task, outputs, labels, rounds)
        return (counts / counts.sum()).tolist()
    rng = np.random.default_rng(seed)
    shares = np.zeros(len(outputs))
    for _ in range(bags):
        rows = rng.integers(0, len(labels), size=len(labels))
        counts = greedy_selection(task, [out[rows] for out in outputs], labels[rows], rounds)
        shares += counts / counts.sum()
    return (shares / bags).tolist()


def ensemble_logits(task: dict, logits: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The ensemble's logits for one task from the members' logits (what `MultiTaskEnsembleModel` computes)."""
    return as_logits(task, weighted_average([member_outputs(task, member) for member in logits], weights))
