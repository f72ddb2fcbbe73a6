"""training.recipe: run-wide loss flags applied to the tasks, backbone resolution, cheap checks before loading."""

from __future__ import annotations

import numpy as np
import pytest

from data import DataArguments
from training.arguments import ArgumentError, ModelArguments, MultiTaskTrainingArguments
from training.recipe import check_arguments, configure_tasks, encoder_depth, resolve_backbone

TASKS = [
    {"name": "mood", "type": "multiclass", "labels": ["a", "b", "c"], "loss": "ce", "weight": 1.0},
    {"name": "tags", "type": "multilabel", "labels": ["x", "y"], "loss": "bce", "weight": 1.0},
    {"name": "vad", "type": "regression", "labels": ["V"], "loss": "mse", "weight": 1.0},
]
LABELS = {
    "mood": np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, -100]),
    "tags": np.array([[1, 0], [1, 0], [0, 0], [0, 1], [-100, -100]], dtype=float),
    "vad": np.array([[3.0], [np.nan]]),
}


def test_loss_flags_reach_classification_tasks_only():
    args = ModelArguments(use_focal_loss=True, focal_gamma=1.5, label_smoothing=0.1, task_weight=["vad=0.5"])
    mood, tags, vad = configure_tasks(TASKS, args, LABELS)
    assert (mood["loss"], mood["focal_gamma"], mood["label_smoothing"]) == ("focal", 1.5, 0.1)
    assert (tags["loss"], tags["label_smoothing"]) == ("focal", 0.1)
    assert vad["loss"] == "mse" and "label_smoothing" not in vad and vad["weight"] == 0.5
    assert TASKS[0]["loss"] == "ce"  # the input dicts are not modified


def test_class_weights_are_balanced_inverse_frequency_with_smoothing():
    mood, tags, _ = configure_tasks(TASKS, ModelArguments(class_weights=True, class_weight_smoothing=1.0), LABELS)
    counts = np.array([6, 2, 1]) + 1.0  # labelled rows only, plus the pseudo-count
    expected = counts.sum() / (3 * counts)
    assert mood["class_weights"] == pytest.approx(list(expected), rel=1e-6)
    assert tags["pos_weight"] == pytest.approx([(2 + 1) / (2 + 1), (3 + 1) / (1 + 1)])


def test_packaged_minilm_resolves_offline_and_its_depth_is_read_from_the_config(minilm_path):
    assert resolve_backbone("sentence-transformers/all-MiniLM-L6-v2") == minilm_path
    assert resolve_backbone("some/other-model") == "some/other-model"
    assert encoder_depth(minilm_path) == 6


def test_checks_before_loading_name_the_flag():
    training = MultiTaskTrainingArguments(output_dir="/tmp/x", freeze_strategy="partial", freeze_layers=7)
    with pytest.raises(ArgumentError, match="--freeze-layers 7"):
        check_arguments(ModelArguments(), DataArguments(), training, num_layers=6)
    ok = MultiTaskTrainingArguments(output_dir="/tmp/x")
    with pytest.raises(ArgumentError, match="--weighted-sampling 'tags2'"):
        check_arguments(ModelArguments(), DataArguments(weighted_sampling="tags2"), ok, 6, task_names=["tags"])
