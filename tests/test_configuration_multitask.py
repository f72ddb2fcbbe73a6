"""MultiTaskConfig: defaults, JSON round trips, and one clear ValueError per bad input."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_backbone_config

from modeling import MultiTaskConfig, label_key
from modeling.task_schema import TASK_DEFAULTS

EMO = {"name": "emotion", "type": "multiclass", "labels": ["anger", "joy", "sadness"]}
TAGS = {"name": "tags", "type": "multilabel", "labels": ["a", "b", "c"]}
FLAG = {"name": "flag", "type": "binary", "labels": ["no", "yes"]}
VAD = {"name": "vad", "type": "regression", "labels": ["V", "A", "D"]}


def make(**kwargs) -> MultiTaskConfig:
    return MultiTaskConfig(encoder_config=tiny_backbone_config("bert"), **kwargs)


def test_no_argument_config_and_unset_tasks():
    config = MultiTaskConfig()
    assert config.tasks is None and config.task_names == []
    assert config.pooling == "mean" and config.head_hidden_dims == [256, 128] and config.head_dropout == 0.3
    assert config.loss_weighting == "fixed" and config.thresholds == {} and config.temperatures == {}
    assert config.encoder_config.model_type == "bert"
    assert config.keys_to_ignore_at_inference == ["task_losses", "pooled_output", "log_variances"]


def test_task_defaults_are_filled():
    config = make(tasks=[EMO, TAGS, {"name": "flag", "type": "binary"}, VAD])
    assert config.task_names == ["emotion", "tags", "flag", "vad"]
    for task in config.tasks:
        assert set(task) == set(TASK_DEFAULTS)
    assert config.get_task("emotion")["loss"] == "ce" and config.get_task("tags")["loss"] == "bce"
    assert config.get_task("flag")["labels"] == ["0", "1"]
    vad = config.get_task("vad")
    assert vad["loss"] == "mse" and vad["target_mean"] == [0.0] * 3 and vad["target_std"] == [1.0] * 3
    assert vad["output_range"] is None and vad["weight"] == 1.0
    assert EMO == {"name": "emotion", "type": "multiclass", "labels": ["anger", "joy", "sadness"]}  # not mutated
    assert label_key("vad") == "labels_vad"


def test_json_round_trip_keeps_everything(tmp_path):
    config = make(
        tasks=[{**EMO, "loss": "focal", "focal_gamma": 1.5, "class_weights": [1.0, 2.0, 0.5]},
               {**TAGS, "pos_weight": 3.0}, FLAG,
               {**VAD, "target_mean": [3, 3, 3], "target_std": [0.5, 0.4, 0.3], "output_range": [1, 5]}],
        pooling="attention", head_hidden_dims=[64], head_residual=True, loss_weighting="uncertainty",
        thresholds={"tags": {"a": 0.3}, "flag": {"yes": 0.7}}, temperatures={"emotion": 1.5},
    )
    assert config.get_task("tags")["pos_weight"] == [3.0, 3.0, 3.0]
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "multitask_text" and saved["encoder_config"]["model_type"] == "bert"
    loaded = MultiTaskConfig.from_pretrained(tmp_path)
    assert loaded.tasks == config.tasks and loaded.thresholds == config.thresholds
    assert loaded.temperatures == {"emotion": 1.5} and loaded.pooling == "attention"
    assert loaded.head_hidden_dims == [64] and loaded.head_residual is True
    assert loaded.encoder_config.hidden_size == 32 and loaded.encoder_config.num_hidden_layers == 2


def test_max_length_and_truncation_side_round_trip(tmp_path):
    make(tasks=[EMO], max_length=96, truncation_side="left").save_pretrained(tmp_path)
    loaded = MultiTaskConfig.from_pretrained(tmp_path)
    assert (loaded.max_length, loaded.truncation_side) == (96, "left")
    assert MultiTaskConfig().max_length is None


BAD_INPUTS = [
    ({"tasks": []}, "tasks: expected a non-empty list"),
    ({"pooling": "median"}, r"pooling: 'median' is not supported; allowed: \['cls', 'mean', 'max', 'mean_max'"),
    ({"tasks": [{"name": "t", "type": "ordinal", "labels": ["a", "b"]}]},
     r"tasks\[0\] \('t'\)\.type: 'ordinal' is not a task type; allowed: \['multiclass', 'multilabel', 'binary', "),
    ({"tasks": [{**EMO, "loss": "mse"}]}, r"\.loss: 'mse' is not a multiclass loss; allowed: \['ce', 'focal'\]"),
    ({"tasks": [{**TAGS, "loss": "ce"}]}, r"\.loss: 'ce' is not a multilabel loss; allowed: \['bce', 'focal'\]"),
    ({"tasks": [{**VAD, "loss": "bce"}]}, r"allowed: \['mse', 'huber', 'gaussian_nll'\]"),
    ({"tasks": [{**VAD, "labels": []}]}, r"\.labels: a regression task needs at least one output name"),
    ({"tasks": [{"name": "vad", "type": "regression"}]}, r"\.labels: missing: give the label names"),
    ({"tasks": [{"name": "emo", "type": "multiclass"}]}, r"\.labels: missing: give the label names"),
    ({"max_length": 1}, r"max_length: expected an int >= 2"),
    ({"truncation_side": "middle"}, r"truncation_side: 'middle' is not supported; allowed: \['right', 'left'\]"),
    ({"tasks": [{**EMO, "labels": ["only"]}]}, r"\.labels: a multiclass task needs at least 2 labels"),
    ({"tasks": [{**TAGS, "labels": ["only"]}]}, r"\.labels: a multilabel task needs at least 2 labels"),
    ({"tasks": [{**FLAG, "labels": ["a", "b", "c"]}]}, r"\.labels: a binary task needs exactly 2 names"),
    ({"tasks": [TAGS], "thresholds": {"tags": {"zzz": 0.5}}},
     r"thresholds\['tags'\]: unknown label 'zzz'; allowed: \['a', 'b', 'c'\]"),
    ({"tasks": [FLAG], "thresholds": {"flag": {"no": 0.5}}}, r"unknown label 'no'; allowed: \['yes'\]"),
    ({"tasks": [TAGS, EMO], "thresholds": {"emotion": {"joy": 0.5}}},
     r"thresholds: unknown task 'emotion'; allowed \(tasks of type \['multilabel', 'binary'\]\): \['tags'\]"),
    ({"tasks": [TAGS], "thresholds": {"tags": {"a": 1.5}}}, r"thresholds\['tags'\]\['a'\]: must be in \[0, 1\]"),
    ({"tasks": [EMO], "temperatures": {"emotion": 0.0}}, r"temperatures\['emotion'\]: must be > 0"),
    ({"tasks": [EMO, VAD], "temperatures": {"vad": 2.0}}, r"temperatures: unknown task 'vad'"),
    ({"tasks": [EMO, {**TAGS, "name": "emotion"}]}, r"task names must be unique, duplicated: \['emotion'\]"),
    ({"tasks": [{**EMO, "name": "my-task"}]}, r"tasks\[0\]\.name: must match \[A-Za-z0-9_\]\+"),
    ({"tasks": [{**EMO, "name": "keys"}]}, r"tasks\[0\]\.name: 'keys' is reserved"),
    ({"tasks": [{**EMO, "pos_weights": [1.0]}]}, r"unknown key\(s\) \['pos_weights'\]; allowed keys: \['name'"),
    ({"tasks": [{**EMO, "class_weights": [1.0, 2.0]}]}, r"\.class_weights: expected a list of 3 numbers"),
    ({"tasks": [{**TAGS, "class_weights": [1.0, 2.0, 3.0]}]}, r"\.class_weights: is not used by a multilabel task"),
    ({"tasks": [{**EMO, "label_smoothing": 1.0}]}, r"\.label_smoothing: must be in \[0, 1\)"),
    ({"tasks": [{**VAD, "label_smoothing": 0.1}]}, r"\.label_smoothing: applies to classification tasks only"),
    ({"tasks": [{**VAD, "output_range": [5, 1]}]}, r"\.output_range: needs \[low, high\] with low < high"),
    ({"tasks": [{**VAD, "target_std": [1.0, 0.0, 1.0]}]}, r"\.target_std\[1\]: must be in"),
    ({"tasks": [{**EMO, "weight": 0}]}, r"\.weight: must be > 0"),
    ({"tasks": [{**FLAG, "focal_alpha": [1.5]}]}, r"\.focal_alpha\[0\]: must be in \[0.0, 1.0\]"),
    ({"loss_weighting": "learned"}, r"loss_weighting: 'learned' .* allowed: \['fixed', 'uncertainty'\]"),
    ({"head_hidden_dims": [64, 0]}, r"head_hidden_dims: expected a list of positive ints"),
    ({"head_dropout": 1.0}, r"head_dropout: must be in \[0, 1\)"),
    ({"head_activation": "swish"}, r"head_activation: 'swish' is not supported; allowed: \['gelu'"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_INPUTS, ids=[m[:40] for _, m in BAD_INPUTS])
def test_bad_input_raises_value_error_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_get_task_unknown_name_lists_known_tasks():
    with pytest.raises(ValueError, match=r"no task named 'nope'; known tasks: \['emotion'\]"):
        make(tasks=[EMO]).get_task("nope")


def test_thresholds_edited_after_build_are_checked_at_save(tmp_path):
    config = make(tasks=[TAGS])
    config.thresholds = {"tags": {"missing_label": 0.4}}
    with pytest.raises(ValueError, match="unknown label 'missing_label'"):
        config.save_pretrained(tmp_path)
