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


@pytest.mark.parametrize("value, shown", [("inf", "inf"), ("-inf", "-inf"), ("1e309", "inf")])
def test_non_finite_regression_target(tmp_path, value, shown):
    train = _csv(tmp_path, "train.csv", text=["a", "b", "c"], score=["1.5", value, "2"])
    msg = _fail(DataArguments(train_file=[train], task=["score:regression"]))
    assert msg.startswith(f"{train}, row 2, column 'score': non-finite value '{shown}' for regression task 'score'")


def test_a_numeric_text_column_is_refused(tmp_path):
    train = _csv(tmp_path, "train.csv", text=[1, 2, 3], label=["x", "y", "x"])
    msg = _fail(DataArguments(train_file=[train], task=["label:multiclass"]))
    assert msg.startswith(f"{train}, column 'text': holds int64 values, not text")


def test_list_cells_in_a_parquet_text_column_are_refused(tmp_path):
    path = tmp_path / "train.parquet"
    pd.DataFrame({"text": [["a", "list"], ["b"], ["c"]], "label": ["x", "y", "x"]}).to_parquet(path)
    msg = _fail(DataArguments(train_file=[str(path)], task=["label:multiclass"]))
    assert msg.startswith(f"{path}, row 1, column 'text': a ndarray") and "not a text (3 such row(s)" in msg


def test_json_numbers_among_texts_name_the_row(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "fine", "label": "x"}\n{"text": 42, "label": "y"}\n{"text": "ok", "label": "x"}\n')
    msg = _fail(DataArguments(train_file=[str(path)], task=["label:multiclass"]))
    assert msg.startswith(f"{path}, row 2, column 'text': a int (42), not a text (1 such row(s)")


@pytest.mark.parametrize("name, write, fragment", [
    ("d.csv", lambda p: p.write_text("text,label,label\na,x,y\n"), "column name 'label' appears more than once"),
    ("d.tsv", lambda p: p.write_text("text\tlabel\ttext\na\tx\tb\n"), "column name 'text' appears more than once"),
    ("d.jsonl", lambda p: p.write_text('{"text": "a", "label": "x", "label": "y"}\n'),
     "line 1: key 'label' appears twice"),
    ("d.json", lambda p: p.write_text('[{"text": "a", "label": "x", "label": "y"}]'), "key 'label' appears twice"),
])
def test_duplicated_column_names_are_refused(tmp_path, name, write, fragment):
    write(tmp_path / name)
    msg = _fail(DataArguments(train_file=[str(tmp_path / name)], task=["label:multiclass"]))
    assert msg.startswith(str(tmp_path / name)) and fragment in msg


def test_duplicated_parquet_columns_are_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table([["a"], ["x"], ["y"]], names=["text", "label", "label"]), path)
    assert "column name 'label' appears more than once" in _fail(
        DataArguments(train_file=[str(path)], task=["label:multiclass"]))


@pytest.mark.parametrize("task, cells", [("tags:multilabel", ["0,2", "1", "-1,0"]),
                                         ("tags:multiclass", ["0", "1", "-1"])])
def test_negative_ids_are_refused_when_labels_are_inferred(tmp_path, task, cells):
    train = _csv(tmp_path, "train.csv", text=["a", "b", "c"], tags=cells)
    msg = _fail(DataArguments(train_file=[train], task=[task]))
    assert msg.startswith(f"{train}, row 3, column 'tags': negative label id in '{cells[2]}'")


def test_an_encoding_error_names_the_row_even_deep_in_a_large_file(tmp_path):
    path = tmp_path / "big.csv"
    rows = [f'"text number {i}, with a comma",x' for i in range(200_000)]
    rows[150_000] = 'caf\xe9,x'
    path.write_bytes(("text,label\n" + "\n".join(rows) + "\n").encode("utf-8").replace("\xe9".encode(), b"\xe9"))
    msg = _fail(DataArguments(train_file=[str(path)], task=["label:multiclass"]))
    assert msg.startswith(f"{path}, row 150001: not utf-8 text (byte 0xe9 at offset ")
