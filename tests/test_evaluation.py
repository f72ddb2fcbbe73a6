"""Evaluation glue: select/calibrate split, calibration stored in the config, report on test, evaluate_model.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
from conftest import tiny_backbone_config

import evaluate_model
from training.evaluation import (
    calibrate_model,
    collect_predictions,
    default_label_columns,
    read_labelled_file,
    run_evaluation,
    select_and_calibrate,
    split_for_calibration,
    tokenize_dataset,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
TASKS = [
    {"name": "sentiment", "type": "multiclass", "labels": ["negative", "neutral", "positive"]},
    {"name": "emotions", "type": "multilabel", "labels": ["anger", "joy", "fear"]},
    {"name": "ei", "type": "binary", "labels": ["I", "E"]},
    {"name": "vad", "type": "regression", "labels": ["V", "A"], "target_mean": [3.0, 2.5], "target_std": [1.0, 0.5]},
]
STORED_THRESHOLDS = {"emotions": {"anger": 0.3, "joy": 0.6, "fear": 0.5}, "ei": {"E": 0.4}}
STORED_TEMPERATURES = {"sentiment": 1.5, "emotions": 0.9, "ei": 2.0}
CSV = """text,sentiment,emotions,ei,V,A
I love this so much,positive,joy,E,4.5,3.0
The meeting moved to Thursday,neutral,,I,3.0,2.0
ugh this is awful,negative,anger,I,1.5,3.5
so scared of the dark,negative,fear,,2.0,4.0
what a lovely surprise,positive,"joy,fear",E,4.2,
the bus was late again,negative,anger,E,2.1,2.9
grateful for my friends,positive,joy,I,4.4,2.2
it is raining,neutral,,I,3.1,1.8
"""


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tokenizer):
    """A tiny 4-task model saved with the real MiniLM tokenizer and stored thresholds/temperatures."""
    import torch

    from modeling import MultiTaskConfig, MultiTaskModel

    config = MultiTaskConfig(encoder_config=tiny_backbone_config("bert", vocab_size=len(tokenizer)).to_dict(),
                             tasks=TASKS, thresholds=STORED_THRESHOLDS, temperatures=STORED_TEMPERATURES,
                             head_hidden_dims=[16])
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_model")
    MultiTaskModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "test.csv"
    path.write_text(CSV)
    return path


def test_split_for_calibration_is_seeded_and_disjoint():
    data = datasets.Dataset.from_dict({"i": list(range(20))})
    select, calibrate = split_for_calibration(data, seed=3)
    assert len(select) == len(calibrate) == 10
    assert sorted(list(select["i"]) + list(calibrate["i"])) == list(range(20))
    again, _ = split_for_calibration(data, seed=3)
    other, _ = split_for_calibration(data, seed=4)
    assert list(again["i"]) == list(select["i"]) and list(other["i"]) != list(select["i"])
    with pytest.raises(ValueError, match="calibration file"):
        split_for_calibration(data.select([0]))
    splits = datasets.DatasetDict({"validation": data, "calibration": data.select(range(4))})
    chosen, cal = select_and_calibrate(splits)
    assert len(chosen) == 20 and len(cal) == 4
    halves = select_and_calibrate(datasets.DatasetDict({"validation": data}), seed=3)
    assert list(halves[1]["i"]) == list(calibrate["i"])


def test_default_label_columns():
    assert default_label_columns(TASKS[0], ["text", "sentiment"]) == ["sentiment"]
    assert default_label_columns(TASKS[1], ["text", "anger", "joy", "fear"]) == ["anger", "joy", "fear"]
    assert default_label_columns(TASKS[1], ["text", "emotions"]) == ["emotions"]
    assert default_label_columns(TASKS[3], ["text", "V", "A"]) == ["V", "A"]
    assert default_label_columns(TASKS[2], ["text"]) is None
    with pytest.raises(ValueError, match="only some of its columns"):
        default_label_columns(TASKS[3], ["text", "V"])


def test_calibrate_then_report_on_test(saved_model, csv_file, tokenizer, tmp_path):
    from data.collator import MultiTaskCollator
    from modeling import MultiTaskModel

    model = MultiTaskModel.from_pretrained(saved_model)
    raw, notes = read_labelled_file(str(csv_file), model.config.tasks)
    assert notes == []
    data = tokenize_dataset(raw, tokenizer, 128)
    collator = MultiTaskCollator(tokenizer, model.config.tasks)
    logits, labels = collect_predictions(model, data, collator, batch_size=3)
    assert logits["sentiment"].shape == (8, 3) and logits["ei"].shape == (8,) and logits["vad"].shape == (8, 2)
    assert labels["sentiment"].tolist() == [2, 1, 0, 0, 2, 0, 2, 1] and labels["ei"][3] == -100
    assert labels["emotions"][4].tolist() == [0.0, 1.0, 1.0] and np.isnan(labels["vad"][4, 1])
    calibration = calibrate_model(model, data.select(range(6)), collator, batch_size=4)
    assert set(model.config.temperatures) == {"sentiment", "emotions", "ei"}
    assert set(model.config.thresholds) == {"emotions", "ei"} and set(model.config.thresholds["ei"]) == {"E"}
    assert model.config.thresholds["ei"]["E"] == calibration["tasks"]["ei"]["thresholds"]["E"]
    model.save_pretrained(tmp_path / "calibrated")
    reloaded = MultiTaskModel.from_pretrained(tmp_path / "calibrated")
    assert reloaded.config.thresholds == model.config.thresholds
    assert reloaded.config.temperatures == pytest.approx(model.config.temperatures)
    report = run_evaluation(model, data.select(range(6, 8)), collator, tmp_path / "out")
    assert report["n_rows"] == 2 and report["tasks"]["ei"]["thresholds"] == model.config.thresholds["ei"]
    assert (tmp_path / "out" / "metrics.json").is_file() and (tmp_path / "out" / "plots" / "scatter_vad.png").is_file()


def test_evaluate_model_script_end_to_end(saved_model, csv_file, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO_ROOT)}
    out = tmp_path / "eval"
    done = subprocess.run([sys.executable, str(REPO_ROOT / "evaluate_model.py"), "--model", str(saved_model),
                           "--test-file", str(csv_file), "--output-dir", str(out), "--batch-size", "4"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "score" in done.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_rows"] == 8 and metrics["split"] == "test.csv"
    assert metrics["tasks"]["emotions"]["thresholds"] == STORED_THRESHOLDS["emotions"]
    assert metrics["tasks"]["sentiment"]["calibration"]["temperature"] == pytest.approx(1.5)
    assert metrics["tasks"]["vad"]["outputs"]["A"]["n"] == 7
    assert "## sentiment (multiclass, 8 labelled rows)" in (out / "report.md").read_text()
    assert {p.name for p in (out / "plots").iterdir()} >= {"confusion_matrix_sentiment.png", "scatter_vad.png"}


@pytest.mark.parametrize("case", ["missing_file", "no_model", "bad_column_flag", "no_label_columns",
                                  "no_tokenizer"])
def test_evaluate_model_bad_input_is_one_line(case, saved_model, csv_file, tmp_path, capsys):
    unlabelled = tmp_path / "plain.csv"
    unlabelled.write_text("text,other\nhello,1\n")
    partial = tmp_path / "partial"
    shutil.copytree(saved_model, partial)
    (partial / "tokenizer.json").unlink()
    args = {"missing_file": ["--model", str(saved_model), "--test-file", str(tmp_path / "nope.csv")],
            "no_model": ["--model", str(tmp_path), "--test-file", str(csv_file)],
            "bad_column_flag": ["--model", str(saved_model), "--test-file", str(csv_file), "--column", "vad"],
            "no_label_columns": ["--model", str(saved_model), "--test-file", str(unlabelled)],
            "no_tokenizer": ["--model", str(partial), "--test-file", str(csv_file)]}[case]
    assert evaluate_model.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evaluate_model.py: error: ") and "\n" not in err and "Traceback" not in err
    expected = {"missing_file": "file not found", "no_model": "no config.json",
                "bad_column_flag": "TASK=COL", "no_label_columns": "no label column for any task",
                "no_tokenizer": "has no saved tokenizer"}[case]
    assert expected in err


def test_compute_metrics_inside_the_hf_trainer(saved_model, csv_file, tokenizer, tmp_path):
    """The real Trainer hands compute_metrics the {task: logits} dict and a tuple of label arrays."""
    from transformers import Trainer, TrainingArguments

    from data.collator import MultiTaskCollator
    from modeling import MultiTaskModel
    from training.metrics import build_compute_metrics

    model = MultiTaskModel.from_pretrained(saved_model)
    data = tokenize_dataset(read_labelled_file(str(csv_file), model.config.tasks)[0], tokenizer, 128)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=3, report_to=[], use_cpu=True,
                             label_names=[f"labels_{t}" for t in model.config.task_names],
                             remove_unused_columns=False)
    trainer = Trainer(model=model, args=args, eval_dataset=data, data_collator=MultiTaskCollator(tokenizer, TASKS),
                      compute_metrics=build_compute_metrics(model.config.tasks))
    metrics = trainer.evaluate()
    assert {"eval_loss", "eval_score", "eval_sentiment_macro_f1", "eval_emotions_macro_f1", "eval_ei_f1",
            "eval_vad_ccc", "eval_vad_ccc_A"} <= set(metrics)
    report = run_evaluation(model, data, MultiTaskCollator(tokenizer, TASKS), tmp_path / "r")
    assert metrics["eval_score"] == pytest.approx(report["score_at_0.5"], abs=1e-5)
