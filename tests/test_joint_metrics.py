"""training.joint_metrics: all classification tasks right at once, against a hand-counted case."""

from __future__ import annotations

import numpy as np
import pytest

from training.joint_metrics import joint_accuracy


def test_joint_accuracy_counts_rows_right_on_every_classification_task():
    tasks = [{"name": "mood", "type": "multiclass", "labels": ["a", "b"]},
             {"name": "tags", "type": "multilabel", "labels": ["x", "y"]},
             {"name": "ei", "type": "binary", "labels": ["I", "E"]},
             {"name": "vad", "type": "regression", "labels": ["V"]}]
    logits = {"mood": np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 0.0]]),
              "tags": np.array([[3.0, -3.0], [3.0, 3.0], [3.0, -3.0], [-3.0, -3.0]]),
              "ei": np.array([3.0, 3.0, -3.0, 3.0]), "vad": np.zeros((4, 1))}
    labels = {"mood": np.array([0, 1, 0, -100]),  # row 3 unlabelled for mood: left out
              "tags": np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]),  # row 1: y wrongly on
              "ei": np.array([1.0, 1.0, 0.0, 1.0]), "vad": np.full((4, 1), np.nan)}
    joint = joint_accuracy(tasks, logits, labels)
    assert joint == {"accuracy": pytest.approx(2 / 3), "n": 3, "tasks": ["mood", "tags", "ei"]}
    assert joint_accuracy(tasks, logits, labels, thresholds={"tags": {"y": 0.999}})["accuracy"] == 1.0
    assert joint_accuracy(tasks[2:], logits, labels) is None  # one classification task: nothing to join
