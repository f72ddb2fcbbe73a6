"""ONNX export: parity, output names, dynamic axes, metadata round trip, eval mode, predict.py parity, int8."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch
from inference_support import TEXTS, read_jsonl, run_script, save_tiny_model

import export_onnx
import predict
from inference.onnx_backend import METADATA_KEY, JsonTokenizer, parse_metadata
from inference.onnx_export import ExportError, assert_eval_mode, export, torch_export
from inference.torch_backend import TorchBackend

TASK_NAMES = ["sentiment", "emotions", "ei", "vad"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    return save_tiny_model(tmp_path_factory.mktemp("tiny_model"), tokenizer)


@pytest.fixture(scope="module")
def fp32_export(model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx_fp32")
    return folder, export(str(model_dir), folder)


@pytest.fixture(scope="module")
def int8_export(model_dir, tmp_path_factory):
    target = tmp_path_factory.mktemp("onnx_int8") / "tiny-int8.onnx"
    return target, export(str(model_dir), target, quantize="int8")


def test_fp32_parity_and_named_outputs(fp32_export):
    folder, report = fp32_export
    assert max(report["fp32_max_abs_diff"].values()) < 1e-4
    assert set(report["fp32_max_abs_diff"]) == set(TASK_NAMES)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == [f"logits_{t}" for t in TASK_NAMES]
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]
    assert (folder / "tokenizer.json").is_file() and not (folder / "config.json").exists()


@pytest.mark.parametrize(("batch", "length"), [(1, 5), (5, 23)])
def test_dynamic_axes_match_pytorch(fp32_export, model_dir, batch, length):
    folder, _ = fp32_export
    backend = TorchBackend.load(str(model_dir))
    generator = torch.Generator().manual_seed(batch)
    ids = torch.randint(1000, 2000, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, length // 2:] = 0  # one padded row
    feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": np.zeros_like(ids.numpy())}
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    got = dict(zip(TASK_NAMES, session.run([f"logits_{t}" for t in TASK_NAMES], feed)))
    expected = backend.run(feed)
    assert got["ei"].shape == (batch,) and got["sentiment"].shape == (batch, 3) and got["vad"].shape == (batch, 3)
    for name in TASK_NAMES:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-4)


def test_metadata_round_trip(fp32_export, model_dir):
    folder, _ = fp32_export
    meta = ort.InferenceSession(str(folder / "model.onnx")).get_modelmeta().custom_metadata_map
    document = parse_metadata(meta, "test")
    saved = json.loads((model_dir / "config.json").read_text())
    assert document["config"]["tasks"] == saved["tasks"]
    assert document["config"]["thresholds"] == saved["thresholds"] == {"emotions": {"joy": 0.0, "anger": 1.0},
                                                                       "ei": {"E": 0.6}}
    assert document["config"]["temperatures"] == saved["temperatures"]
    assert document["config"]["tasks"][3]["target_std"] == [0.4, 0.3, 0.2]
    assert document["outputs"] == {t: f"logits_{t}" for t in TASK_NAMES}
    assert document["max_length"] == 128 and document["quantization"] is None
    with pytest.raises(ValueError, match="no multi-task metadata"):
        parse_metadata({"other": "1"}, "x.onnx")
    with pytest.raises(ValueError, match="lacks"):
        parse_metadata({METADATA_KEY: json.dumps({"format_version": 1})}, "x.onnx")


def test_model_is_in_eval_mode_after_export(model_dir, tmp_path):
    backend = TorchBackend.load(str(model_dir))
    backend.model.train()
    torch_export(backend, tmp_path / "m.onnx")
    assert not any(module.training for module in backend.model.modules())
    backend.model.heads.train()
    with pytest.raises(ExportError, match="training mode"):
        assert_eval_mode(backend.model)


def test_predict_on_onnx_equals_predict_on_pytorch(fp32_export, model_dir, tmp_path):
    folder, _ = fp32_export
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(TEXTS), encoding="utf-8")
    outputs = {}
    for name, model in (("pt", model_dir), ("onnx", folder)):
        outputs[name] = tmp_path / f"{name}.jsonl"
        assert predict.main(["--model", str(model), "--input", str(source), "--output", str(outputs[name]),
                             "--batch-size", "3", "--quiet"]) == 0
    for pt, ox in zip(read_jsonl(outputs["pt"]), read_jsonl(outputs["onnx"])):
        assert pt["text"] == ox["text"]
        for task in TASK_NAMES:
            assert pt[task].get("label") == ox[task].get("label") and pt[task].get("labels") == ox[task].get("labels")
            for key in ("probabilities", "values"):
                if key in pt[task]:
                    np.testing.assert_allclose(list(pt[task][key].values()), list(ox[task][key].values()), atol=1e-4)
        assert pt["ei"]["probability"] == pytest.approx(ox["ei"]["probability"], abs=1e-4)


def test_int8_export_is_smaller_and_serves(int8_export, fp32_export, tmp_path, capsys):
    target, report = int8_export
    assert target.is_file() and (target.parent / "tokenizer.json").is_file()
    assert report["quantization"] == "int8"
    assert target.stat().st_size < 0.6 * (fp32_export[0] / "model.onnx").stat().st_size
    assert max(report["int8_max_abs_diff"].values()) < 0.5
    meta = ort.InferenceSession(str(target)).get_modelmeta().custom_metadata_map
    assert parse_metadata(meta, "int8")["quantization"] == "int8"
    assert predict.main(["--model", str(target), "--text", "good morning", "--text", "", "--quiet"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and rows[1]["sentiment"]["label"] in {"negative", "neutral", "positive"}


def test_json_tokenizer_matches_transformers_tokenizer(fp32_export, tokenizer):
    folder, _ = fp32_export
    texts = [*TEXTS, "word " * 300, "Ünïcödé façade, naïve café", "tab\tseparated", "HELLO World!!!"]
    ours = JsonTokenizer(folder)(texts, max_length=40)
    reference = tokenizer(texts, padding=True, truncation=True, max_length=40, return_tensors="np")
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(ours[name], reference[name])
    assert ours["input_ids"].shape == (len(texts), 40)


def test_onnx_serving_does_not_import_model_code(fp32_export):
    folder, _ = fp32_export
    code = ("import sys, predict; rc = predict.main(['--model', sys.argv[1], '--text', 'hi', '--quiet']); "
            "loaded = sorted(m for m in sys.modules if m.startswith('modeling.')); "
            "print(rc, loaded, 'torch' in sys.modules, 'transformers' in sys.modules, file=sys.stderr)")
    import subprocess

    from inference_support import REPO_ROOT, script_env

    result = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, timeout=120,
                            env=script_env(), cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr.decode()
    # the numpy-only decoding and schema modules of `modeling`, but no model code, not even torch or transformers
    expected = "0 ['modeling.postprocessing', 'modeling.serving', 'modeling.task_schema'] False False"
    assert result.stderr.decode().strip().splitlines()[-1] == expected
    assert json.loads(result.stdout.decode())["text"] == "hi"


def test_export_cli_prints_parity_and_rejects_bad_model(model_dir, tmp_path, capsys):
    assert export_onnx.main(["--model", str(model_dir), "--output", str(tmp_path / "cli.onnx")]) == 0
    out = capsys.readouterr().out
    assert "max abs diff fp32 vs PyTorch" in out and (tmp_path / "cli.onnx").is_file()
    result = run_script("export_onnx.py", "--model", str(tmp_path), "--output", str(tmp_path / "x"), timeout=60)
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr and "not a saved model folder" in stderr
