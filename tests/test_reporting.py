"""Reports: metrics.json (no NaN, atomic), report.md tables, valid PNG plots, loss curves from partial histories."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from matplotlib.image import imread

from training.calibration import fit_task_calibration
from training.reporting import build_report, plot_loss_curves, to_jsonable, write_json_atomic, write_reports

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TASKS = [
    {"name": "emotion", "type": "multiclass", "labels": ["anger", "joy", "grief"]},
    {"name": "tags", "type": "multilabel", "labels": ["x", "y", "z"]},
    {"name": "toxic", "type": "binary", "labels": ["clean", "toxic"]},
    {"name": "vad", "type": "regression", "labels": ["V", "A"]},
]
HISTORY = [
    {"loss": 1.2, "loss_emotion": 0.7, "loss_vad": 0.5, "grad_norm": 3.0, "learning_rate": 1e-4, "epoch": 0.5,
     "step": 5},
    {"eval_loss": 1.0, "eval_loss_emotion": 0.6, "eval_loss_vad": 0.4, "eval_score": 0.3, "epoch": 0.5, "step": 5},
    {"loss": 0.9, "loss_emotion": 0.5, "epoch": 1.0, "step": 10},
    {"eval_loss": 0.8, "eval_loss_emotion": 0.5, "epoch": 1.0, "step": 10},
    {"train_runtime": 3.2, "train_loss": 1.0, "epoch": 1.0, "step": 10},
]


def toy_split(seed: int, n: int = 80):
    rng = np.random.default_rng(seed)
    labels = {"emotion": rng.integers(0, 2, n),  # 'grief' never occurs
              "tags": (rng.random((n, 3)) < [0.4, 0.2, 0.0]).astype(np.float32),
              "toxic": (rng.random(n) < 0.3).astype(np.float32),
              "vad": rng.normal(3, 1, (n, 2)).astype(np.float32)}
    labels["tags"][:5, 1] = -100
    labels["vad"][::7, 1] = np.nan
    logits = {"emotion": 3 * (2 * np.eye(3)[labels["emotion"]] + rng.normal(0, 2, (n, 3))) - [0, 0, 40],
              "tags": 3 * (labels["tags"] - 0.7) + rng.normal(0, 1.5, (n, 3)),
              "toxic": 5 * (labels["toxic"] - 0.7) + rng.normal(0, 2, n),
              "vad": np.nan_to_num(labels["vad"], nan=3.0) + rng.normal(0, 0.5, (n, 2))}
    return logits, labels


def full_report():
    cal_logits, cal_labels = toy_split(0)
    fitted = {t["name"]: fit_task_calibration(t, cal_logits[t["name"]], cal_labels[t["name"]])
              for t in TASKS if t["type"] != "regression"}
    thresholds = {k: v["thresholds"] for k, v in fitted.items() if "thresholds" in v}
    temperatures = {k: v["temperature"] for k, v in fitted.items()}
    logits, labels = toy_split(1)
    report = build_report(TASKS, logits, labels, thresholds, temperatures,
                          calibration={"split": "calibrate", "tasks": fitted})
    return report, logits, labels


def reject_nan(token: str):
    raise AssertionError(f"metrics.json holds {token}")


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_write_reports_files_and_content(tmp_path):
    report, logits, labels = full_report()
    files = write_reports(tmp_path / "out", report, HISTORY, logits, labels)
    out = tmp_path / "out"
    expected_plots = {"loss_curves.png", "confusion_matrix_emotion.png", "f1_per_label_tags.png",
                      "reliability_emotion.png", "reliability_tags.png", "reliability_toxic.png", "scatter_vad.png"}
    assert {p.name for p in (out / "plots").iterdir()} == expected_plots
    for name in expected_plots:
        assert_png(out / "plots" / name)
    saved = json.loads((out / "metrics.json").read_text(), parse_constant=reject_nan)
    assert saved["tasks"]["emotion"]["per_class"]["grief"]["f1"] is None
    assert saved["tasks"]["emotion"]["undefined"]["per_class.grief.recall"] == "class 'grief' absent from labels"
    assert saved["score"] == pytest.approx(report["score"]) and saved["log_history"][0]["loss"] == 1.2
    assert saved["tasks"]["tags"]["thresholds"] == pytest.approx(report["calibration"]["tasks"]["tags"]["thresholds"])
    md = (out / "report.md").read_text()
    for heading in ("## emotion (multiclass", "## tags (multilabel", "## toxic (binary", "## vad (regression"):
        assert heading in md
    assert "| metric | at 0.5 | at fitted thresholds |" in md and "| mean |" in md
    assert "ECE (15 bins)" in md and "(plots/reliability_toxic.png)" in md and "n/a" in md
    assert not list(out.glob(".*tmp")) and files["report.md"] == out / "report.md"


def test_fitted_thresholds_help_on_held_out_split():
    report, _, _ = full_report()
    tags, toxic = report["tasks"]["tags"], report["tasks"]["toxic"]
    assert tags["at_fitted"]["micro_f1"] > tags["at_0.5"]["micro_f1"]
    assert toxic["at_fitted"]["f1"] > toxic["at_0.5"]["f1"]
    assert report["score"] > report["score_at_0.5"]
    assert report["tasks"]["emotion"]["calibration"]["ece_after"] < report["tasks"]["emotion"]["calibration"][
        "ece_before"]


def test_loss_curves_tolerate_missing_keys(tmp_path):
    assert plot_loss_curves([], tmp_path / "a.png") is None
    assert plot_loss_curves([{"train_runtime": 1.0, "epoch": 1.0}], tmp_path / "b.png") is None
    only_eval = plot_loss_curves([{"eval_loss_emotion": 0.5}, {"eval_loss_emotion": 0.4}], tmp_path / "c.png")
    assert_png(only_eval)
    report, _, _ = full_report()
    files = write_reports(tmp_path / "noplot", report)  # no history, no arrays: no loss curve, no scatter
    assert "loss_curves" not in files and "scatter:vad" not in files
    assert "reliability:emotion" in files


def test_json_helpers_never_write_nan(tmp_path):
    data = {"a": np.float32(1.5), "b": [np.int64(2), float("nan")], "c": np.array([1.0, np.inf]), "d": np.bool_(1)}
    assert to_jsonable(data) == {"a": 1.5, "b": [2, None], "c": [1.0, None], "d": True}
    path = write_json_atomic(tmp_path / "sub" / "m.json", data)
    assert json.loads(path.read_text())["b"] == [2, None]
    assert [p.name for p in path.parent.iterdir()] == ["m.json"]
    assert not any(isinstance(v, float) and math.isnan(v) for v in json.loads(path.read_text())["c"] if v)
