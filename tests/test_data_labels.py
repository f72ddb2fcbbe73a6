"""Every accepted label encoding becomes the contract's arrays; missing cells are masks, not errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.labels import encode_task, infer_labels, raw_tokens
from data.validation import DataValidationError
from modeling.task_schema import labelled_rows


def _spec(task_type: str, labels=None, columns=None) -> dict:
    """A draft task dict as the data side holds it (regression outputs default to their columns)."""
    if task_type == "regression" and labels is None:
        labels = list(columns)
    return {"name": "t", "type": task_type, "labels": labels}


def test_multiclass_names_ids_and_missing():
    spec = _spec("multiclass", ["neg", "neu", "pos"])
    frame = pd.DataFrame({"c": ["pos", " neg", None, "1", 2]}, dtype=object)
    out = encode_task(spec, frame, ["c"], "f.csv")
    assert out.dtype == np.int64 and out.tolist() == [2, 0, -100, 1, 2]


def test_multiclass_integer_names_match_as_names_not_ids():
    spec = _spec("multiclass", ["1", "2", "3"])
    out = encode_task(spec, pd.DataFrame({"c": [1.0, 3.0, np.nan]}), ["c"], "f.csv")
    assert out.tolist() == [0, 2, -100]
    with pytest.raises(DataValidationError, match="row 1, column 'c': unknown label '0'"):
        encode_task(spec, pd.DataFrame({"c": [0]}), ["c"], "f.csv")


def test_multiclass_inferred_labels_sorted_ints_numerically():
    spec = _spec("multiclass")
    assert infer_labels(spec, raw_tokens(spec, pd.DataFrame({"c": [10, 2, 1, 2]}), ["c"]), ["c"]) == ["1", "2", "10"]
    assert infer_labels(spec, {"b", "a"}, ["c"]) == ["a", "b"]


def test_multilabel_string_of_ids_or_names_with_both_separators():
    spec = _spec("multilabel", ["joy", "anger", "fear"])
    frame = pd.DataFrame({"c": ["0,2", "anger; fear", "", None, "1"]}, dtype=object)
    out = encode_task(spec, frame, ["c"], "f.tsv")
    assert out.dtype == np.float32
    assert out.tolist() == [[1, 0, 1], [0, 1, 1], [-100] * 3, [-100] * 3, [0, 1, 0]]


def test_multilabel_list_cells_and_empty_list_is_all_negative():
    spec = _spec("multilabel", ["a", "b"])
    frame = pd.DataFrame({"c": [["a", "b"], [], ["b"], None]}, dtype=object)
    assert encode_task(spec, frame, ["c"], "f.json").tolist() == [[1, 1], [0, 0], [0, 1], [-100, -100]]
    inferred = _spec("multilabel")
    assert infer_labels(inferred, raw_tokens(inferred, frame, ["c"]), ["c"]) == ["a", "b"]


def test_multilabel_one_column_per_label_with_partial_entries():
    spec = _spec("multilabel", columns=["x", "y"])
    spec["labels"] = infer_labels(spec, set(), ["x", "y"])
    frame = pd.DataFrame({"x": [1, 0, np.nan], "y": ["true", "False", "1"]})
    out = encode_task(spec, frame, ["x", "y"], "f.csv")
    assert spec["labels"] == ["x", "y"] and out.tolist() == [[1, 1], [0, 0], [-100, 1]]
    assert labelled_rows(out).tolist() == [True, True, True]


def test_binary_01_bools_and_names():
    assert encode_task(_spec("binary"), pd.DataFrame({"c": [1, 0, np.nan]}), ["c"], "f").tolist() == [1, 0, -100]
    frame = pd.DataFrame({"c": [True, False]})
    assert encode_task(_spec("binary"), frame, ["c"], "f").tolist() == [1, 0]
    assert encode_task(_spec("binary"), pd.DataFrame({"c": ["TRUE", "false"]}), ["c"], "f").tolist() == [1, 0]
    named = _spec("binary", ["ham", "spam"])
    out = encode_task(named, pd.DataFrame({"c": ["spam", "ham", ""]}, dtype=object), ["c"], "f")
    assert out.dtype == np.float32 and out.tolist() == [1, 0, -100]
    assert infer_labels(_spec("binary"), {"spam", "ham"}, ["c"]) == ["ham", "spam"]
    assert infer_labels(_spec("binary"), {"True", "false"}, ["c"]) == ["0", "1"]
    with pytest.raises(DataValidationError, match="3 distinct value"):
        infer_labels(_spec("binary"), {"a", "b", "c"}, ["c"])
    with pytest.raises(DataValidationError, match="row 2, column 'c': unknown label 'maybe' for binary task"):
        encode_task(named, pd.DataFrame({"c": ["spam", "maybe"]}), ["c"], "f")


def test_regression_one_and_several_columns_with_missing():
    spec = _spec("regression", columns=["V", "A"])
    frame = pd.DataFrame({"V": [1.5, np.nan, 3], "A": ["2", " ", "4.25"]})
    out = encode_task(spec, frame, ["V", "A"], "f")
    assert out.dtype == np.float32 and out.shape == (3, 2)
    np.testing.assert_array_equal(out, np.array([[1.5, 2], [np.nan, np.nan], [3, 4.25]], dtype=np.float32))
    assert labelled_rows(out).tolist() == [True, False, True]


def test_unmapped_task_is_all_missing():
    frame = pd.DataFrame({"x": [1, 2]})
    assert encode_task(_spec("multiclass", ["a"]), frame, None, "f").tolist() == [-100, -100]
    assert np.isnan(encode_task(_spec("regression", columns=["V", "A"]), frame, None, "f")).all()
    assert (encode_task(_spec("multilabel", ["a", "b"]), frame, None, "f") == -100).all()
