"""train_ensemble.py as a user runs it: two tiny members on 72 real tweets, then predict, export and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

import predict
import train_enhanced
import train_ensemble

TASKS = ["--task", "sentiment:multiclass", "--task", "markers:multilabel:mention,hashtag", "--task",
         "confidence:regression"]


@pytest.fixture
def shared(tmp_path, tiny_backbone_dir, demo_sample_csv):
    return ["--backbone", tiny_backbone_dir, "--train-file", str(demo_sample_csv), *TASKS, "--batch-size", "16",
            "--epochs", "2", "--validation-split", "0.3", "--disable-tqdm", "true", "--report-to", "none",
            "--data-cache-dir", str(tmp_path / "cache")]


def test_members_train_the_ensemble_serves_and_a_rerun_reuses_them(tmp_path, shared, caplog):
    out = tmp_path / "ensemble"
    flags = [*shared, "--member", "seed=1", "--member", "seed=2 pooling=cls", "--output-dir", str(out)]
    with caplog.at_level("INFO"):
        assert train_ensemble.main(flags) == 0
    summary = json.loads((out / "ensemble.json").read_text())
    assert list(summary["comparison"]) == ["member-0", "member-1", "plain average", "ensemble"]
    assert all(sum(w) == pytest.approx(1.0) for w in summary["weights"].values())
    assert {"config.json", "model.safetensors", "tokenizer.json", "metrics.json", "ensemble.md", "README.md",
            "members"} <= {p.name for p in out.iterdir()}
    assert (out / "plots" / "ensemble.png").is_file() and "Members" in (out / "README.md").read_text()
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "multitask_ensemble" and config["members"][1]["pooling"] == "cls"
    assert set(config["temperatures"]) == {"sentiment", "markers"}  # fitted on the ensemble's own outputs
    assert predict.main(["--model", str(out), "--text", "what a day #happy", "--output",
                         str(tmp_path / "p.jsonl"), "--quiet"]) == 0
    record = json.loads((tmp_path / "p.jsonl").read_text())
    assert set(record) == {"text", "sentiment", "markers", "confidence"}
    from inference.onnx_export import export

    report = export(str(out), tmp_path / "onnx")
    assert max(report["fp32_max_abs_diff"].values()) < 1e-4  # one graph, weights inside
    caplog.clear()
    with caplog.at_level("INFO"):
        assert train_ensemble.main(flags) == 0
    assert caplog.text.count("complete, reused") == 2 and ": training" not in caplog.text


def test_cross_validation_members_and_out_of_fold_scores(tmp_path, shared):
    out = tmp_path / "cv"
    assert train_ensemble.main([*shared, "--cv-folds", "2", "--output-dir", str(out)]) == 0
    summary = json.loads((out / "ensemble.json").read_text())
    folds = summary["cross_validation"]["folds"]
    assert [f["fold"] for f in folds] == [0, 1] and sum(f["rows"] for f in folds) > 30  # the training split
    assert set(summary["cross_validation"]["summary"]["score"]) == {"mean", "std"}
    assert sorted(p.name for p in (out / "members").iterdir()) == ["fold-0", "fold-1"]
    rows = [f["rows"] for f in folds]
    assert abs(rows[0] - rows[1]) <= 1 and np.isfinite(summary["cross_validation"]["summary"]["score"]["mean"])


@pytest.mark.parametrize("extra, message", [
    (["--member", "seed=1"], "an ensemble needs at least 2 members, got 1"),
    (["--cv-folds", "1"], "--cv-folds 1: cross-validation needs at least 2 folds"),
    (["--member", "seed"], "--member 'seed': expected NAME=VALUE settings"),
    (["--member", "seed=1", "--cv-folds", "2"], "give the members one way"),
])
def test_bad_ensemble_flags_are_one_line(tmp_path, shared, capsys, extra, message):
    assert train_ensemble.main([*shared, *extra, "--output-dir", str(tmp_path / "e")]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and not (tmp_path / "e" / "members").exists()


def test_from_models_refuses_a_folder_that_is_not_a_model_and_members_with_other_tasks(tmp_path, shared, capsys):
    assert train_ensemble.main([*shared, "--from-models", str(tmp_path), str(tmp_path), "--output-dir",
                                str(tmp_path / "e")]) == 2
    assert "is not a saved model folder" in capsys.readouterr().err
    one, two = tmp_path / "one", tmp_path / "two"
    assert train_enhanced.main([*shared, "--output-dir", str(one)]) == 0
    assert train_enhanced.main([*shared[:4], "--task", "sentiment:multiclass", *shared[10:],
                                "--output-dir", str(two)]) == 0
    assert train_ensemble.main([*shared, "--from-models", str(one), str(two), "--output-dir",
                                str(tmp_path / "e")]) == 2
    assert "members predict different tasks" in capsys.readouterr().err
