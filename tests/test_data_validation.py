"""Each bad input gets its own message naming file, row and column, raised before any tokenization."""

from __future__ import annotations

import pandas as pd
import pytest

from data.arguments import DataArguments
from data.pipeline import prepare_data
from data.validation import DataValidationError, DataWarning


class ExplodingTokenizer:
    """Proves validation runs first: any tokenizer use fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"tokenizer used before validation finished ({name})")

    def __call__(self, *args, **kwargs):
        raise AssertionError("tokenizer called before validation finished")


def _csv(tmp_path, name: str, **columns) -> str:
    path = tmp_path / name
    pd.DataFrame(columns).to_csv(path, index=False)
    return str(path)


def _fail(args: DataArguments) -> str:
    with pytest.raises(DataValidationError) as err:
        prepare_data(args, ExplodingTokenizer())
    return str(err.value)


def test_missing_text_column(tmp_path):
    train = _csv(tmp_path, "train.csv", body=["a", "b"], label=["x", "y"])
    msg = _fail(DataArguments(train_file=[train], task=["label:multiclass"]))
    assert msg.startswith(f"{train}: missing text column 'text' (columns in the file: body, label)")
    assert "--text-column" in msg


def test_missing_label_column(tmp_path):
    train = _csv(tmp_path, "train.csv", text=["a", "b"], label=["x", "y"])
    msg = _fail(DataArguments(train_file=[train], task=["emotion:multiclass"]))
    assert f"{train}: missing label (task 'emotion') column 'emotion' (columns in the file: text, label)" in msg


def test_unknown_label_in_validation_file(tmp_path):
    train = _csv(tmp_path, "train.csv", text=["a", "b", "c"], label=["joy", "anger", "joy"])
    val = _csv(tmp_path, "val.csv", text=["d", "e", "f"], label=["joy", "surprise", "surprise"])
    msg = _fail(DataArguments(train_file=[train], validation_file=val, test_split=0, task=["label:multiclass"]))
    assert msg.startswith(f"{val}, row 2, column 'label': unknown label 'surprise' for task 'label'")
    assert "2 row(s) with unknown labels; allowed: anger, joy" in msg


def test_non_numeric_regression_value(tmp_path):
    train = _csv(tmp_path, "train.csv", text=["a", "b", "c"], score=["1.5", "", "high"])
    msg = _fail(DataArguments(train_file=[train], task=["score:regression"]))
    assert msg.startswith(f"{train}, row 3, column 'score': non-numeric value 'high' for regression task 'score'")


def test_empty_or_whitespace_text(tmp_path):
    train = _csv(tmp_path, "train.csv", text=["fine", "   ", None, "ok"], label=["x", "y", "x", "y"])
    msg = _fail(DataArguments(train_file=[train], task=["label:multiclass"]))
    assert msg.startswith(f"{train}, row 2, column 'text': empty or whitespace-only text (2 such row(s)")


def test_task_without_any_labelled_training_row(tmp_path):
    train = _csv(tmp_path, "train.csv", text=["a", "b"], label=["x", "y"], score=[None, None])
    msg = _fail(DataArguments(train_file=[train], task=["label:multiclass", "score:regression"]))
    assert msg.startswith("task 'score': no labelled row in the training split") and train in msg
    train2 = _csv(tmp_path, "t2.csv", text=["a", "b"], label=[None, None])
    assert "task 'label': no labelled row in the training split" in _fail(
        DataArguments(train_file=[train2], task=["label:multiclass"]))


def test_unknown_weighted_sampling_task(tmp_path):
    train = _csv(tmp_path, "train.csv", text=["a", "b"], label=["x", "y"])
    msg = _fail(DataArguments(train_file=[train], task=["label:multiclass"], weighted_sampling="lable"))
    assert msg == "--weighted-sampling 'lable': not a task (tasks: label)"


def test_unseen_label_and_train_test_overlap_are_warnings(tmp_path, tokenizer):
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text("tasks: [{name: label, type: multiclass, labels: [joy, anger, fear]}]\n")
    train = _csv(tmp_path, "train.csv", text=["a", "b", "c", "d"], label=["joy", "anger", "joy", "anger"])
    test = _csv(tmp_path, "test.csv", text=["a", "b", "zz"], label=["joy", "fear", "fear"])
    args = DataArguments(train_file=[train], test_file=test, validation_split=0, tasks_file=str(tasks),
                         data_cache_dir="none")
    with pytest.warns(DataWarning) as record:
        prepared = prepare_data(args, tokenizer)
    messages = [str(w.message) for w in record]
    assert "task 'label': label(s) never seen in training: fear" in messages
    assert "2 distinct text(s) appear in both the train and the test split; test scores will be optimistic" in messages
    assert prepared.warnings == messages
