"""Tasks as the data side parses them: `--task` flags and tasks-file entries become schema dicts plus columns."""

from __future__ import annotations

import pytest

from data.tasks import TaskList, TaskSpecError, parse_task_flag, task_from_entry
from modeling.task_schema import TASK_DEFAULTS, normalize_task


def test_flag_with_name_type_and_columns():
    task, columns = parse_task_flag("vad:regression:V,A,D")
    assert (task["name"], task["type"], task["labels"], columns) == ("vad", "regression", ["V", "A", "D"],
                                                                     ["V", "A", "D"])
    assert task["loss"] == "mse" and set(task) == set(TASK_DEFAULTS)
    assert task["target_mean"] is None  # a draft: filled from the training split, then completed by the schema


def test_flag_column_defaults_to_name_and_loss_defaults_per_type():
    assert parse_task_flag("emotion:multiclass")[1] == ["emotion"]
    assert parse_task_flag("e:multiclass")[0]["loss"] == "ce"
    assert parse_task_flag("e:multilabel")[0]["loss"] == "bce"
    assert parse_task_flag("e:binary")[0]["labels"] is None  # inferred from the data (0/1, true/false or 2 names)
    assert parse_task_flag("e:multiclass")[0]["labels"] is None


@pytest.mark.parametrize("flag, fragment", [
    ("emotion", "expected NAME:TYPE"),
    ("emotion:multi", "'multi' is not a task type; allowed: ['multiclass', 'multilabel', 'binary', 'regression']"),
    ("bad-name:binary", "name: must match"),
    ("a:binary:x:y", "expected NAME:TYPE"),
])
def test_bad_flags_name_the_flag(flag, fragment):
    with pytest.raises(TaskSpecError, match="--task") as err:
        parse_task_flag(flag)
    assert fragment in str(err.value)


def test_entry_validates_keys_and_loss_with_the_schema():
    task, columns = task_from_entry({"name": "s", "type": "multiclass", "column": "sent", "loss": "focal",
                                     "focal_gamma": 1.5, "label_smoothing": 0.1, "labels": ["a", "b"],
                                     "class_weights": [1, 2]})
    assert columns == ["sent"] and task["loss"] == "focal" and task["class_weights"] == [1.0, 2.0]
    assert task == normalize_task(task)  # the draft is already in its final shape
    with pytest.raises(TaskSpecError, match=r"unknown key\(s\) \['colour'\]"):
        task_from_entry({"name": "s", "type": "binary", "colour": "x"})
    with pytest.raises(TaskSpecError, match=r"task 's'.loss: 'mse' is not a multiclass loss; allowed: \['ce', "):
        task_from_entry({"name": "s", "type": "multiclass", "loss": "mse"})
    with pytest.raises(TaskSpecError, match="missing the required key 'type'"):
        task_from_entry({"name": "s"})


@pytest.mark.parametrize("entry, fragment", [
    ({"type": "binary", "labels": ["a", "b", "c"]}, "a binary task needs exactly 2 names"),
    ({"type": "multiclass", "labels": ["a", "a"]}, "names must be unique"),
    ({"type": "multiclass", "weight": 0}, "weight: must be > 0"),
    ({"type": "multiclass", "label_smoothing": 1.0}, "label_smoothing: must be in [0, 1)"),
    ({"type": "regression", "label_smoothing": 0.1}, "classification tasks only"),
    ({"type": "regression", "output_range": [5, 1]}, "output_range: needs [low, high] with low < high"),
    ({"type": "regression", "target_std": [0.0]}, "target_std[0]: must be in"),
])
def test_entry_value_checks_name_the_task_and_field(entry, fragment):
    with pytest.raises(TaskSpecError) as err:
        task_from_entry({"name": "t", **entry}, "--tasks-file x.yaml")
    assert str(err.value).startswith("--tasks-file x.yaml: task 't'.") and fragment in str(err.value)


def test_task_list_refuses_a_name_twice():
    tasks = TaskList()
    tasks.add(*parse_task_flag("a:binary"), "--task a:binary")
    with pytest.raises(TaskSpecError, match="--task a:multiclass: task name 'a' is defined twice"):
        tasks.add(*parse_task_flag("a:multiclass"), "--task a:multiclass")
    assert tasks.names == ["a"] and tasks.columns == {"a": ["a"]}


def test_task_errors_are_data_validation_errors():
    from data.validation import DataValidationError

    assert issubclass(TaskSpecError, DataValidationError) and issubclass(TaskSpecError, ValueError)
