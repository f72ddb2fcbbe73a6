"""TaskSpec parsing (flags and tasks-file entries), defaults and the config dict."""

from __future__ import annotations

import pytest

from data.tasks import TaskSpec, TaskSpecError, check_unique, label_key, parse_task_flag


def test_flag_with_name_type_and_columns():
    spec = parse_task_flag("vad:regression:V,A,D")
    assert (spec.name, spec.type, spec.columns, spec.labels) == ("vad", "regression", ["V", "A", "D"], ["V", "A", "D"])
    assert spec.loss == "mse" and spec.key == "labels_vad" and spec.num_outputs == 3


def test_flag_column_defaults_to_name_and_loss_defaults_per_type():
    assert parse_task_flag("emotion:multiclass").columns == ["emotion"]
    assert parse_task_flag("e:multiclass").loss == "ce"
    assert parse_task_flag("e:multilabel").loss == "bce"
    assert parse_task_flag("e:binary").num_outputs == 1


@pytest.mark.parametrize("flag, fragment", [
    ("emotion", "expected NAME:TYPE"),
    ("emotion:multi", "unknown type 'multi' (allowed: multiclass, multilabel, binary, regression)"),
    ("bad-name:binary", "name must match"),
    ("a:binary:x:y", "expected NAME:TYPE"),
])
def test_bad_flags_name_the_flag(flag, fragment):
    with pytest.raises(TaskSpecError, match="--task") as err:
        parse_task_flag(flag)
    assert fragment in str(err.value)


def test_from_dict_validates_keys_and_loss():
    spec = TaskSpec.from_dict({"name": "s", "type": "multiclass", "column": "sent", "loss": "focal",
                               "focal_gamma": 1.5, "label_smoothing": 0.1, "class_weights": [1, 2]})
    assert spec.columns == ["sent"] and spec.loss == "focal" and spec.class_weights == [1, 2]
    with pytest.raises(TaskSpecError, match=r"unknown key\(s\) \['colour'\]"):
        TaskSpec.from_dict({"name": "s", "type": "binary", "colour": "x"})
    with pytest.raises(TaskSpecError, match="loss 'mse' not allowed for multiclass .allowed: ce, focal."):
        TaskSpec.from_dict({"name": "s", "type": "multiclass", "loss": "mse"})
    with pytest.raises(TaskSpecError, match="missing the required key 'type'"):
        TaskSpec.from_dict({"name": "s"})


@pytest.mark.parametrize("kwargs, fragment", [
    ({"type": "binary", "labels": ["a", "b", "c"]}, "exactly 2 label names"),
    ({"type": "multiclass", "labels": ["a", "a"]}, "duplicate label names"),
    ({"type": "multiclass", "weight": 0}, "weight must be > 0"),
    ({"type": "multiclass", "label_smoothing": 1.0}, "label_smoothing must be in [0, 1)"),
    ({"type": "regression", "label_smoothing": 0.1}, "classification tasks only"),
    ({"type": "regression", "output_range": [5, 1]}, "output_range must be [low, high]"),
    ({"type": "regression", "target_std": [0.0]}, "target_std values must be > 0"),
])
def test_spec_value_checks(kwargs, fragment):
    with pytest.raises(TaskSpecError) as err:
        TaskSpec(name="t", **kwargs)
    assert fragment in str(err.value)


def test_config_dict_has_every_schema_key_with_defaults():
    reg = TaskSpec(name="vad", type="regression", columns=["V", "A"], output_range=[1, 5]).to_config_dict()
    assert reg["labels"] == ["V", "A"] and reg["target_mean"] == [0.0, 0.0] and reg["target_std"] == [1.0, 1.0]
    assert reg["output_range"] == [1.0, 5.0]
    binary = TaskSpec(name="stress", type="binary").to_config_dict()
    assert binary["labels"] == ["0", "1"] and binary["target_mean"] is None and binary["loss"] == "bce"
    assert set(binary) == {"name", "type", "labels", "loss", "focal_gamma", "focal_alpha", "label_smoothing",
                           "class_weights", "pos_weight", "weight", "target_mean", "target_std", "output_range",
                           "huber_delta"}


def test_unique_names_and_label_key():
    assert label_key("emotions") == "labels_emotions"
    with pytest.raises(TaskSpecError, match="defined twice"):
        check_unique([parse_task_flag("a:binary"), parse_task_flag("a:multiclass")])
    with pytest.raises(TaskSpecError, match="no task defined"):
        check_unique([])


def test_task_errors_are_data_validation_errors():
    from data.validation import DataValidationError

    assert issubclass(TaskSpecError, DataValidationError) and issubclass(TaskSpecError, ValueError)
