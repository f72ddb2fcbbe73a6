"""prepare_data end to end: the GoEmotions + EmoBank partial-label merge, splitting, calibration, Hub path."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pandas as pd
import pytest

from data.arguments import DataArguments
from data.pipeline import prepare_data
from data.validation import DataValidationError

MERGE_YAML = """
tasks:
  - {{name: emotions, type: multilabel, labels: {data}/goemotions/labels.txt}}
  - {{name: vad, type: regression, labels: [V, A, D], output_range: [1, 5]}}
sources:
  train:
    - {{path: {data}/goemotions/train.tsv, column_names: [text, emotions, id], columns: {{emotions: emotions}},
       max_rows: 200}}
    - {{path: {data}/emobank/emobank.csv, split_column: split, split: train, columns: {{vad: [V, A, D]}},
       max_rows: 200}}
  validation:
    - {{path: {data}/goemotions/dev.tsv, column_names: [text, emotions, id], columns: {{emotions: emotions}},
       max_rows: 50}}
    - {{path: {data}/emobank/emobank.csv, split_column: split, split: dev, columns: {{vad: [V, A, D]}},
       max_rows: 50, drop_empty_text: true}}
"""


@pytest.mark.filterwarnings("ignore::data.validation.DataWarning")  # samples share a few short texts
def test_goemotions_emobank_partial_label_merge(tmp_path, shared_data, tokenizer):
    tasks_file = tmp_path / "tasks.yaml"
    tasks_file.write_text(MERGE_YAML.format(data=shared_data))
    args = DataArguments(tasks_file=str(tasks_file), test_split=0.0, data_cache_dir=str(tmp_path / "cache"),
                         weighted_sampling="emotions")
    prepared = prepare_data(args, tokenizer)
    train = prepared.raw["train"]
    assert len(train) == 400 and len(prepared.raw["validation"]) == 100 and "test" not in prepared.raw
    emotions = np.array(train["labels_emotions"][:])
    vad = np.array(train["labels_vad"][:])
    assert emotions.shape == (400, 28) and vad.shape == (400, 3)
    assert (emotions[:200] >= 0).all() and (emotions[:200].sum(axis=1) >= 1).all() and (emotions[200:] == -100).all()
    assert np.isnan(vad[:200]).all() and not np.isnan(vad[200:]).any() and ((vad[200:] >= 1) & (vad[200:] <= 5)).all()
    first = pd.read_csv(shared_data / "goemotions" / "train.tsv", sep="\t", header=None, nrows=1)
    assert train[0]["text"] == first.iloc[0, 0] and emotions[0, int(first.iloc[0, 1])] == 1  # id 27 = neutral
    assert prepared.task("emotions")["labels"][27] == "neutral"
    vad_dict = prepared.task_dicts()[1]
    np.testing.assert_allclose(vad_dict["target_mean"], vad[200:].mean(axis=0), rtol=1e-5)
    assert prepared.label_counts("emotions").sum() == emotions[:200].sum()
    weights = prepared.sample_weights()
    assert weights.shape == (400,) and (weights[200:] == 1.0).all()
    batch = prepared.collator([prepared.tokenized["train"][i] for i in (0, 399)])
    assert batch["labels_emotions"][1].eq(-100).all() and batch["labels_vad"][0].isnan().all()
    assert prepared.label_names == ["labels_emotions", "labels_vad"]


def test_worked_example_tasks_file_resolves_from_the_repo_root(shared_data, monkeypatch):
    from pathlib import Path

    from data.sources import read_tasks_file

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    parsed = read_tasks_file("examples/goemotions_emobank.yaml")
    assert len(parsed.tasks.tasks[0]["labels"]) == 28 and set(parsed.sources) == {"train", "validation", "test"}
    paths = [Path(s.path) for srcs in parsed.sources.values() for s in srcs]
    assert len(paths) == 6 and all(p.is_file() for p in paths)


def test_goemotions_unknown_label_id_names_row(tmp_path, shared_data, tokenizer):
    bad = tmp_path / "bad.tsv"
    bad.write_text("fine text\t3\tid1\nother text\t3,28\tid2\n")
    tasks_file = tmp_path / "tasks.yaml"
    labels = shared_data / "goemotions" / "labels.txt"
    tasks_file.write_text(f"tasks: [{{name: emotions, type: multilabel, labels: {labels}}}]\n"
                          f"sources: [{{path: {bad}, column_names: [text, emotions, id]}}]\n")
    with pytest.raises(DataValidationError, match=r"bad.tsv, row 2, column 'emotions': unknown label '28'.*ids 0-27"):
        prepare_data(DataArguments(tasks_file=str(tasks_file)), tokenizer)


def test_single_file_split_calibration_and_max_samples(tmp_path, tokenizer):
    records = [{"text": f"example number {i}", "labels": {"stress": i % 3 == 0}} for i in range(200)]
    (tmp_path / "all.json").write_text(json.dumps(records))
    pd.DataFrame({"text": ["calibrate me", "and me"], "stress": [1, 0]}).to_csv(tmp_path / "cal.csv", index=False)
    args = DataArguments(train_file=[str(tmp_path / "all.json")], calibration_file=str(tmp_path / "cal.csv"),
                         task=["stress:binary"], validation_split=0.2, test_split=0.1, max_train_samples=50,
                         split_seed=7, data_cache_dir="none")
    prepared = prepare_data(args, tokenizer)
    assert {k: len(v) for k, v in prepared.raw.items()} == {"train": 50, "validation": 40, "test": 20,
                                                           "calibration": 2}
    assert prepared.raw["calibration"]["labels_stress"][:] == [1.0, 0.0]
    positives = np.mean(prepared.raw["validation"]["labels_stress"][:])
    assert abs(positives - 67 / 200) < 0.03  # stratified on the binary task
    again = prepare_data(args, tokenizer)
    assert again.raw["train"]["text"][:] == prepared.raw["train"]["text"][:]
    assert prepared.tokenized["train"].column_names == ["input_ids", "token_type_ids", "attention_mask",
                                                        "labels_stress"]


@pytest.mark.filterwarnings("ignore::data.validation.DataWarning")  # test rows repeat training rows on purpose
def test_saved_datasetdict_folder_and_local_dataset_name(tmp_path, tokenizer):
    rows = {"text": ["good", "bad", "fine", "meh"], "label": ["pos", "neg", "pos", "neg"]}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows),
                          "test": datasets.Dataset.from_dict({k: v[:2] for k, v in rows.items()})}).save_to_disk(
        str(tmp_path / "saved"))
    args = DataArguments(train_file=[str(tmp_path / "saved")], task=["label:multiclass"], validation_split=0.0,
                         data_cache_dir="none")
    prepared = prepare_data(args, tokenizer)
    assert len(prepared.raw["train"]) == 4 and prepared.raw["test"]["text"][:] == ["good", "bad"]
    folder = tmp_path / "local_hub"
    folder.mkdir()
    pd.DataFrame(rows).to_csv(folder / "train.csv", index=False)
    pd.DataFrame(rows).iloc[:2].to_csv(folder / "validation.csv", index=False)
    hub = prepare_data(DataArguments(dataset_name=str(folder), task=["label:multiclass"], test_split=0.0,
                                     data_cache_dir="none"), tokenizer)
    assert len(hub.raw["train"]) == 4 and len(hub.raw["validation"]) == 2
    assert hub.task("label")["labels"] == ["neg", "pos"]
