"""compare_backbones.py end to end: quick mode offline over the defaults, full mode on tiny encoders (a real
training, an int8 export and two timed back ends per backbone, each in its own process), resume, --remeasure, the
output files and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compare_backbones import main
from training.backbone_report import pareto_best, recommendations
from training.backbones import DEFAULT_SPECS


def read(folder: Path) -> dict:
    return json.loads((folder / "comparison.json").read_text(encoding="utf-8"))


def test_quick_mode_offline_over_the_defaults_prints_a_table_and_writes_json_and_markdown(tmp_path, capsys):
    assert main(["--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "params M" in out and "MFLOPs/token" in out and "xlm-roberta-base" in out
    assert "smallest: microsoft/xtremedistil-l6-h256-uncased" in out
    summary = read(tmp_path)
    assert summary["mode"] == "quick" and [r["backbone"] for r in summary["backbones"]] == list(DEFAULT_SPECS)
    assert all(r["status"] == "ok" and r["parameters"] > 0 for r in summary["backbones"])
    assert "instruction_sets" in summary["machine"]
    markdown = (tmp_path / "comparison.md").read_text(encoding="utf-8")
    assert "| xlm-roberta-base | xlm-roberta | 277.5 |" in markdown
    assert not (tmp_path / "accuracy_vs_speed.png").exists()


def test_nothing_comparable_exits_2_with_the_reasons(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["--backbones", str(tmp_path / "empty"), "someone/not-bundled", "--output-dir", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert code == 2 and "no backbone could be compared" in captured.err
    assert "not compared: someone/not-bundled: unavailable:" in captured.out
    assert [r["status"].split(":")[0] for r in read(tmp_path / "o")["backbones"]] == ["unavailable"] * 2
    assert main(["--full", "--backbones", str(tmp_path / "empty"), "--output-dir", str(tmp_path / "f")]) == 2


@pytest.mark.parametrize("flags, message", [
    (["--backbone", "minilm"], "--backbones SPEC"),
    (["--inference-threads", "0"], "--inference-threads 0"),
    (["--freeze-strategy", "sideways"], "--freeze-strategy 'sideways'"),
    (["--remeasure"], "--remeasure applies to --full only"),  # parsed, so it may not be silently ignored
    (["--epochs", "2"], "--epochs applies to --full only"),
    (["--full", "--backbones", "minilm", "minilm@3", "--cache-embeddings", "on", "--freeze-strategy", "partial"],
     "--cache-embeddings on"),  # wrong for every backbone: one line, not one failed row each
])
def test_bad_flags_are_one_line_before_any_work(tmp_path, capsys, flags, message):
    assert main([*flags, "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("compare_backbones.py: error:") and message in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_full_mode_measures_reuses_and_remeasures(tiny_backbone_dir, demo_sample_csv, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    derived = f"{tiny_backbone_dir}@1"
    flags = ["--full", "--train-file", str(demo_sample_csv), "--task", "sentiment:multiclass", "--task",
             "confidence:regression", "--freeze-strategy", "full", "--epochs", "1", "--inference-texts", "8",
             "--inference-threads", "1", "--output-dir", str(out)]
    assert main([*flags, "--backbones", tiny_backbone_dir, derived, str(tmp_path / "missing")]) == 0
    first = {r["backbone"]: r for r in read(out)["backbones"]}
    for spec, layers in ((tiny_backbone_dir, 2), (derived, 1)):
        row = first[spec]
        assert row["status"] == "ok" and row["layers"] == layers, row
        assert 0 <= row["score"] <= 1 and row["tasks"]["sentiment"]["metric"] == "macro_f1"
        assert row["pytorch_texts_per_s"] > 0 and row["onnx_int8_texts_per_s"] > 0 and row["peak_rss_train_mb"] > 0
        assert row["embedding_cache"] and row["train_samples"] == row["train_rows"]
        assert row["inference_texts"] == min(8, row["test_rows"])
        assert (out / row["slug"] / "result.json").is_file() and (out / row["slug"] / "onnx_int8").is_dir()
    assert (out / first[derived]["slug"] / "encoder" / "model.safetensors").is_file()
    assert first[str(tmp_path / "missing")]["status"].startswith("unavailable: ")
    assert (out / "accuracy_vs_speed.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (out / "comparison.md").read_text(encoding="utf-8")
    assert "sentiment macro_f1" in markdown and "fast serving:" in markdown and "accuracy_vs_speed.png" in markdown
    capsys.readouterr()

    assert main([*flags, "--backbones", tiny_backbone_dir, derived]) == 0
    assert "reused from an earlier run" in capsys.readouterr().out
    second = {r["backbone"]: r for r in read(out)["backbones"]}
    assert all(second[s]["reused"] and second[s]["measured_at"] == first[s]["measured_at"] for s in second)

    import training.backbone_benchmark as benchmark

    measured = []  # the measurement itself was run for real above; here only that --remeasure asks for it again
    kept = {k: v for k, v in first[derived].items() if k not in ("measured_at", "settings", "reused")}
    monkeypatch.setattr(benchmark, "measure", lambda backbone, folder, plan: measured.append(backbone.spec) or kept)
    assert main([*flags, "--backbones", derived, "--remeasure"]) == 0
    third = read(out)["backbones"][0]
    assert measured == [derived] and not third.get("reused")
    assert third["measured_at"] >= first[derived]["measured_at"]
    stored = json.loads((out / third["slug"] / "result.json").read_text(encoding="utf-8"))
    assert stored["measured_at"] == third["measured_at"]


def test_a_failed_pytorch_timing_fails_the_row_and_is_not_stored(tiny_backbone_dir, demo_sample_csv, tmp_path,
                                                                  monkeypatch):
    import training.backbone_benchmark as benchmark

    def fake_child(command, job, folder, name=None):
        if command == "train":
            return {"score": 0.5, "tasks": {}, "onnx_int8_error": "unsupported operator"}
        return {"error": "cannot import name 'x' (exit 1; log: infer_pytorch.log)"}

    monkeypatch.setattr(benchmark, "run_child", fake_child)
    out = tmp_path / "out"
    flags = ["--full", "--backbones", tiny_backbone_dir, "--train-file", str(demo_sample_csv), "--task",
             "sentiment:multiclass", "--freeze-strategy", "full", "--output-dir", str(out)]
    assert main(flags) == 2
    row = read(out)["backbones"][0]
    assert row["status"].startswith("failed: PyTorch inference: cannot import name")
    assert not (out / row["slug"] / "result.json").exists()


def test_pareto_and_recommendations_on_made_up_rows():
    def row(name, score, speed, mb):
        return {"backbone": name, "label": name, "status": "ok", "score": score, "pytorch_texts_per_s": speed,
                "onnx_int8_texts_per_s": None, "model_mb": mb, "parameters": mb * 250_000}

    rows = [row("big", 0.80, 50, 400), row("mid", 0.795, 120, 90), row("small", 0.70, 300, 40),
            row("worse", 0.69, 100, 60), {"backbone": "x", "label": "x", "status": "unavailable: no"}]
    assert pareto_best(rows) == ["big", "mid", "small"]
    picks = {r["use"]: r["backbone"] for r in recommendations("full", rows)}
    assert picks == {"fast serving": "mid", "best accuracy": "big", "smallest": "small"}
