"""Every input format reads into the same frame; nested dicts flatten; split filters; Hub path and its errors."""

from __future__ import annotations

import json

import datasets
import pandas as pd
import pytest

from data.loading import detect_format, load_hub, read_source
from data.sources import Source
from data.validation import DataValidationError

ROWS = [{"text": "I love it", "label": "joy", "score": 0.5}, {"text": "NA", "label": "anger", "score": None}]


def _check(frame: pd.DataFrame) -> None:
    assert frame["text"].tolist() == ["I love it", "NA"]  # "NA" stays text, not a missing value
    assert frame["label"].tolist() == ["joy", "anger"]
    assert frame["score"].iloc[0] == 0.5 and pd.isna(frame["score"].iloc[1])


def test_csv_and_tsv(tmp_path):
    pd.DataFrame(ROWS).to_csv(tmp_path / "d.csv", index=False)
    pd.DataFrame(ROWS).to_csv(tmp_path / "d.tsv", index=False, sep="\t")
    _check(read_source(Source(str(tmp_path / "d.csv"))))
    _check(read_source(Source(str(tmp_path / "d.tsv"))))


def test_headerless_tsv_with_column_names(tmp_path):
    (tmp_path / "g.tsv").write_text('Hello there\t2,15\tid1\n"Quoted ""word"" here"\t27\tid2\n')
    frame = read_source(Source(str(tmp_path / "g.tsv"), column_names=["text", "emotions", "id"]))
    assert frame["text"].tolist() == ["Hello there", 'Quoted "word" here']
    assert frame["emotions"].astype(str).tolist() == ["2,15", "27"]


def test_json_list_with_nested_label_dict(tmp_path):
    records = [{"text": "so tired", "labels": {"stress": 1, "anxiety": 0}}, {"text": "fine", "labels": {"stress": 0}}]
    (tmp_path / "d.json").write_text(json.dumps(records))
    frame = read_source(Source(str(tmp_path / "d.json")))
    assert frame["stress"].tolist() == [1, 0] and frame["labels.stress"].tolist() == [1, 0]
    assert frame["anxiety"].iloc[0] == 0 and pd.isna(frame["anxiety"].iloc[1])


def test_jsonl_parquet_and_disk(tmp_path):
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n")
    _check(read_source(Source(str(tmp_path / "d.jsonl"))))
    pd.DataFrame(ROWS).to_parquet(tmp_path / "d.parquet")
    _check(read_source(Source(str(tmp_path / "d.parquet"))))
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "single"))
    _check(read_source(Source(str(tmp_path / "single"))))
    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS),
                          "dev": datasets.Dataset.from_list(ROWS[:1])}).save_to_disk(str(tmp_path / "dict"))
    _check(read_source(Source(str(tmp_path / "dict")), split="train"))
    assert read_source(Source(str(tmp_path / "dict")), split="validation")["text"].tolist() == ["I love it"]
    with pytest.raises(DataValidationError, match="no 'test' split .splits: train, dev."):
        read_source(Source(str(tmp_path / "dict")), split="test")


def test_split_column_filter_keeps_file_row_numbers(tmp_path):
    pd.DataFrame({"text": list("abcd"), "split": ["train", "dev", "train", "test"]}).to_csv(tmp_path / "e.csv",
                                                                                          index=False)
    frame = read_source(Source(str(tmp_path / "e.csv"), split_column="split", split="train"))
    assert frame["text"].tolist() == ["a", "c"] and frame.index.tolist() == [0, 2]
    with pytest.raises(DataValidationError, match="column 'split': no row has the value 'val' .values: dev, test"):
        read_source(Source(str(tmp_path / "e.csv"), split_column="split", split="val"))
    assert len(read_source(Source(str(tmp_path / "e.csv"), max_rows=3))) == 3


@pytest.mark.parametrize("name, content, fragment", [
    ("d.xlsx", "x", "unknown file type '.xlsx'"),
    ("d.json", "[1, 2]", "row 1: expected an object with named fields"),
    ("d.json", "{bad", "invalid JSON at line 1"),
    ("d.jsonl", '{"text": "a"}\n{oops\n', "d.jsonl, line 2: invalid JSON"),
    ("d.csv", "", "cannot parse as CSV"),
])
def test_bad_files(tmp_path, name, content, fragment):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataValidationError) as err:
        read_source(Source(str(tmp_path / name)))
    assert fragment in str(err.value) and name in str(err.value)


def test_missing_file_and_wrong_encoding(tmp_path):
    with pytest.raises(DataValidationError, match="nope.csv: file not found"):
        read_source(Source(str(tmp_path / "nope.csv")))
    (tmp_path / "w.csv").write_bytes("text\ncaf\xe9 \x81\n".encode("latin-1"))
    with pytest.raises(DataValidationError, match="not utf-8 text .* set `encoding:`"):
        read_source(Source(str(tmp_path / "w.csv")))
    frame = read_source(Source(str(tmp_path / "w.csv"), encoding="cp1252", encoding_errors="replace"))
    assert frame["text"].iloc[0] == "caf\xe9 \ufffd"


def test_detect_format():
    assert [detect_format(p) for p in ("a.CSV", "a.tsv", "a.jsonl", "a.ndjson", "a.pq")] == [
        "csv", "tsv", "jsonl", "jsonl", "parquet"]


def test_load_dataset_path_offline_and_error(tmp_path):
    folder = tmp_path / "hubless"
    folder.mkdir()
    pd.DataFrame(ROWS).to_csv(folder / "train.csv", index=False)
    pd.DataFrame(ROWS[:1]).to_csv(folder / "validation.csv", index=False)
    frames = load_hub(str(folder))
    assert set(frames) == {"train", "validation"}
    assert frames["train"]["label"].tolist() == ["joy", "anger"]
    with pytest.raises(DataValidationError, match="--dataset-name 'no-such-user/no-such-dataset'.*could not load"):
        load_hub("no-such-user/no-such-dataset")


def test_class_label_ids_become_names_and_minus_one_is_missing(tmp_path):
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"]),
                                  "tags": datasets.List(datasets.ClassLabel(names=["a", "b", "c"]))})
    table = datasets.Dataset.from_dict({"text": ["x", "y", "z"], "label": [1, 0, -1], "tags": [[0, 2], [], [1]]},
                                       features=features)
    table.save_to_disk(str(tmp_path / "cl"))
    frame = read_source(Source(str(tmp_path / "cl")))
    assert frame["label"].tolist()[:2] == ["pos", "neg"] and pd.isna(frame["label"].iloc[2])
    assert [list(t) for t in frame["tags"]] == [["a", "c"], [], ["b"]]
