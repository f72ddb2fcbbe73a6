"""Uncertainty per prediction: predict.py --mc-dropout, and the predicted spread of gaussian_nll heads on every
serving path (PyTorch, ONNX Runtime, the pipeline)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from inference_support import TASKS, build_tiny_model

import predict
from modeling import MultiTaskConfig, MultiTaskModel
from modeling.postprocessing import decode_outputs, decode_samples

GAUSSIAN_TASKS = [*TASKS[:3], {**TASKS[3], "loss": "gaussian_nll"}]
TEXTS = ["what a day", "so tired of this", "the meeting moved to Thursday", "ok"]


def save(folder, model, tokenizer):
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def dropout_model(tmp_path_factory, tokenizer):
    model = build_tiny_model(tokenizer)
    model.config.head_dropout = 0.3
    for module in model.heads.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.3
    return save(tmp_path_factory.mktemp("mc"), model, tokenizer)


@pytest.fixture(scope="module")
def gaussian_model(tmp_path_factory, tokenizer):
    from conftest import tiny_backbone_config

    torch.manual_seed(0)
    config = MultiTaskConfig(encoder_config=tiny_backbone_config(vocab_size=len(tokenizer)).to_dict(),
                             tasks=GAUSSIAN_TASKS, head_hidden_dims=[16])
    model = MultiTaskModel(config).eval()
    with torch.no_grad():
        model.heads["vad"].output.bias[3:] = torch.tensor([0.2, -0.4, 0.6])  # log-variances far from 0
    return save(tmp_path_factory.mktemp("gaussian"), model, tokenizer)


def run_predict(folder, tmp_path, *flags) -> list[dict]:
    out = tmp_path / f"p{len(list(tmp_path.glob('p*')))}.jsonl"
    args = ["--model", str(folder), "--output", str(out), "--quiet", *flags]
    assert predict.main([*args, *[a for t in TEXTS for a in ("--text", t)]]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_mc_dropout_gives_a_mean_and_a_spread_per_label_reproducibly(dropout_model, tmp_path):
    first = run_predict(dropout_model, tmp_path, "--mc-dropout", "8", "--seed", "1")
    assert len(first) == len(TEXTS)
    assert set(first[0]["sentiment"]["std"]) == {"negative", "neutral", "positive"}
    assert set(first[0]["ei"]["std"]) == {"E"} and set(first[0]["vad"]["std"]) == {"V", "A", "D"}
    assert max(first[0]["sentiment"]["std"].values()) > 0  # the passes differ
    probabilities = first[0]["sentiment"]["probabilities"]
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert run_predict(dropout_model, tmp_path, "--mc-dropout", "8", "--seed", "1") == first
    assert run_predict(dropout_model, tmp_path, "--mc-dropout", "8", "--seed", "2") != first


def test_passes_without_dropout_equal_a_plain_prediction(tmp_path, tokenizer):
    folder = save(tmp_path / "no_dropout", build_tiny_model(tokenizer), tokenizer)
    model = MultiTaskModel.from_pretrained(folder)
    assert model.config.head_dropout > 0 and model.config.encoder_config.hidden_dropout_prob > 0  # turn all off
    model.config.head_dropout = 0.0
    model.config.encoder_config.hidden_dropout_prob = model.config.encoder_config.attention_probs_dropout_prob = 0.0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    save(folder, model, tokenizer)
    plain = run_predict(folder, tmp_path)
    once = run_predict(folder, tmp_path, "--mc-dropout", "1")
    twice = run_predict(folder, tmp_path, "--mc-dropout", "2")  # two passes agree only if dropout is really off
    for a, b, c in zip(plain, once, twice):
        assert a["sentiment"]["probabilities"] == pytest.approx(b["sentiment"]["probabilities"])
        assert a["vad"]["values"] == pytest.approx(b["vad"]["values"])
        assert set(c["sentiment"]["std"].values()) == {0.0}


def test_attention_dropout_alone_makes_the_passes_differ(tmp_path, tokenizer):
    """transformers applies attention dropout from the attention module's mode, not through an nn.Dropout."""
    model = build_tiny_model(tokenizer)
    model.config.head_dropout = model.config.encoder_config.hidden_dropout_prob = 0.0
    model.config.encoder_config.attention_probs_dropout_prob = 0.3
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    folder = save(tmp_path / "attention_dropout", model, tokenizer)
    rows = run_predict(folder, tmp_path, "--mc-dropout", "4")
    assert max(rows[0]["sentiment"]["std"].values()) > 0


def test_mc_passes_of_a_gaussian_head_keep_its_predicted_spread():
    task = {"name": "v", "type": "regression", "labels": ["V"]}
    passes = [{"v": np.array([[1.0]]), "std_v": np.array([[0.3]])},
              {"v": np.array([[2.0]]), "std_v": np.array([[0.5]])}]
    rows = decode_samples([task], passes)
    assert rows[0]["v"]["values"]["V"] == pytest.approx(1.5)
    assert rows[0]["v"]["std"]["V"] == pytest.approx(np.sqrt(0.25 + (0.09 + 0.25) / 2))  # across passes + predicted


def test_decode_samples_is_the_mean_of_the_passes():
    task = {"name": "t", "type": "binary", "labels": ["no", "yes"]}
    rows = decode_samples([task], [{"t": np.array([0.0])}, {"t": np.array([2.0])}], thresholds={"t": {"yes": 0.6}})
    p = [0.5, 1 / (1 + np.exp(-2.0))]
    assert rows[0]["t"]["probability"] == pytest.approx(np.mean(p)) and rows[0]["t"]["label"] == "yes"
    assert rows[0]["t"]["std"]["yes"] == pytest.approx(np.std(p))


def test_gaussian_heads_report_their_spread_in_user_units_everywhere(gaussian_model, tmp_path, tokenizer):
    model = MultiTaskModel.from_pretrained(gaussian_model).eval()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        output = model(**batch)
    expected = (torch.exp(0.5 * output.log_variances["vad"]) * torch.tensor([0.4, 0.3, 0.2])).numpy()
    served = run_predict(gaussian_model, tmp_path)
    got = np.array([[r["vad"]["std"][k] for k in ("V", "A", "D")] for r in served])
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    from inference.loading import load_pipeline
    from inference.onnx_export import export

    piped = load_pipeline(str(gaussian_model), device="cpu")(TEXTS[0])
    assert piped["vad"]["std"] == pytest.approx(served[0]["vad"]["std"], rel=1e-5)
    report = export(str(gaussian_model), tmp_path / "onnx")
    assert report["fp32_max_abs_diff"]["std_vad"] < 1e-4
    from_onnx = run_predict(tmp_path / "onnx", tmp_path)
    assert from_onnx[1]["vad"]["std"] == pytest.approx(served[1]["vad"]["std"], rel=1e-4)
    assert "std" not in decode_outputs(GAUSSIAN_TASKS, {k: output.logits[k].numpy() for k in output.logits})[0]["vad"]


def test_mc_dropout_on_an_onnx_export_or_the_pipeline_says_why_not(gaussian_model, tmp_path, capsys):
    from inference.loading import load_pipeline
    from inference.onnx_export import export

    export(str(gaussian_model), tmp_path / "onnx")
    assert predict.main(["--model", str(tmp_path / "onnx"), "--text", "hi", "--mc-dropout", "4"]) == 2
    assert "--mc-dropout needs the PyTorch back end: a onnx model runs without dropout" in capsys.readouterr().err
    with pytest.raises(ValueError, match="mc_dropout is not supported by the pipeline"):
        load_pipeline(str(gaussian_model), device="cpu")("hi", mc_dropout=4)
