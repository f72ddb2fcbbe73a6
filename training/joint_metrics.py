"""Metrics across tasks: the share of rows on which every classification task is right at once.

Personality-axis models (four binary heads) report it as the accuracy of the whole type (`acc_total`); here it is
defined for any mix of multiclass, multilabel and binary tasks, at the fitted temperatures and thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from modeling.postprocessing import probabilities, threshold_vector
from modeling.task_schema import IGNORE_INDEX, labelled_entries


def joint_accuracy(tasks: list[dict], logits: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
                   thresholds: Mapping | None = None, temperatures: Mapping | None = None) -> dict | None:
    """Share of rows whose every classification task is right (a multilabel task: every label), over the rows
    labelled for all of them; None with fewer than two classification tasks."""
    classification = [t for t in tasks if t["type"] != "regression"]
    if len(classification) < 2:
        return None
    thresholds, temperatures = dict(thresholds or {}), dict(temperatures or {})
    rows = len(next(iter(labels.values())))
    labelled, right = np.ones(rows, dtype=bool), np.ones(rows, dtype=bool)
    for task in classification:
        name = task["name"]
        probs = probabilities(task["type"], logits[name], temperatures.get(name))
        truth = np.asarray(labels[name])
        if task["type"] == "multiclass":
            labelled &= truth != IGNORE_INDEX
            right &= probs.argmax(axis=-1) == truth
            continue
        cuts = threshold_vector(task, thresholds.get(name))
        truth = truth.reshape(rows, -1)
        labelled &= labelled_entries(truth).all(axis=1)
        right &= ((probs.reshape(rows, -1) >= cuts) == (truth == 1)).all(axis=1)
    count = int(labelled.sum())
    return {"accuracy": float(right[labelled].mean()) if count else None, "n": count,
            "tasks": [t["name"] for t in classification]}
