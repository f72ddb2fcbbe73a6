"""modeling.serving: every serving path truncates where training did, and a saved tokenizer loads cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from inference_support import build_tiny_model

from data.collator import MultiTaskCollator
from data.tokenization import tokenize_texts
from modeling.serving import encoder_max_length, serving_max_length

TRAINED = 48
LONG_TEXT = " ".join(f"word{i % 97} and more" for i in range(100))  # about 300 tokens


def test_serving_max_length_is_the_trained_length_capped_by_the_encoder():
    encoder = {"max_position_embeddings": 514, "model_type": "roberta", "pad_token_id": 1}
    assert encoder_max_length(encoder) == 512 and encoder_max_length({}) == 512
    assert serving_max_length({"encoder_config": encoder, "max_length": 128}) == 128
    assert serving_max_length({"encoder_config": encoder, "max_length": None}) == 512
    assert serving_max_length({"encoder_config": encoder, "max_length": 4096}) == 512

    class Tokenizer:
        model_max_length = 256

    assert serving_max_length({"encoder_config": encoder}, Tokenizer()) == 256


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory, tokenizer):
    """A tiny model saved as training leaves it, trained on texts cut at 48 tokens."""
    folder = tmp_path_factory.mktemp("trained48")
    model = build_tiny_model(tokenizer)
    model.config.max_length = TRAINED
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def training_logits(folder, tokenizer) -> dict[str, np.ndarray]:
    """The model on exactly what training fed it: the pipeline's tokenization and collator."""
    from modeling import MultiTaskModel

    model = MultiTaskModel.from_pretrained(folder).eval()
    ids = tokenize_texts([LONG_TEXT], tokenizer, TRAINED, cache_dir=None)
    assert len(tokenizer(LONG_TEXT)["input_ids"]) > 250 and len(ids[0]["input_ids"]) == TRAINED
    batch = MultiTaskCollator(tokenizer, model.config.tasks)([ids[0]])
    with torch.no_grad():
        return {k: v.numpy() for k, v in model(**batch).logits.items()}


def test_a_long_text_gets_the_training_logits_from_every_serving_path(trained_folder, tokenizer, tmp_path):
    from inference.loading import load_pipeline
    from inference.onnx_backend import OnnxBackend
    from inference.onnx_export import export
    from inference.runner import load_backend, predict_logits

    expected = training_logits(trained_folder, tokenizer)
    served = predict_logits(load_backend(str(trained_folder), device="cpu"), [LONG_TEXT])
    for name, value in expected.items():
        np.testing.assert_allclose(served[name][0], value[0], atol=1e-5)
    pipe = load_pipeline(str(trained_folder), device="cpu")
    pipe_result = pipe(LONG_TEXT)
    probs = np.exp(expected["sentiment"][0] / 1.7) / np.exp(expected["sentiment"][0] / 1.7).sum()
    np.testing.assert_allclose(list(pipe_result["sentiment"]["probabilities"].values()), probs, atol=1e-5)
    export(str(trained_folder), tmp_path / "onnx")
    onnx = OnnxBackend(tmp_path / "onnx")
    assert onnx.max_length == TRAINED
    from_onnx = predict_logits(onnx, [LONG_TEXT])
    for name, value in expected.items():
        np.testing.assert_allclose(from_onnx[name][0], value[0], atol=1e-4)


LOAD_TOKENIZER = textwrap.dedent("""
    import importlib.util, json, sys, warnings
    from transformers import AutoConfig, AutoTokenizer
    assert importlib.util.find_spec("modeling") is None, "the repository must not be importable here"
    folder, how = sys.argv[1], sys.argv[2]
    if how == "trust_remote_code":
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    else:
        encoder = json.load(open(folder + "/config.json"))["encoder_config"]
        tokenizer = AutoTokenizer.from_pretrained(folder, config=AutoConfig.for_model(**encoder))
    print(type(tokenizer).__name__, tokenizer("hello world")["input_ids"])
""")


@pytest.mark.parametrize("how", ["trust_remote_code", "encoder_config"])
def test_saved_tokenizer_loads_in_a_fresh_process_with_no_prompt_or_warning(trained_folder, tmp_path, how):
    result = subprocess.run([sys.executable, "-c", LOAD_TOKENIZER, str(trained_folder), how], cwd=tmp_path,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                            env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "BertTokenizer" and "[101," in result.stdout
    assert "Do you wish to run the custom code" not in result.stdout + result.stderr
    assert result.stderr == ""  # no warning either


def test_saved_tokenizer_settings_hold_no_trace_of_the_machine(tmp_path, tiny_backbone_dir, demo_sample_csv):
    import train_enhanced

    out = tmp_path / "run"
    assert train_enhanced.main(["--backbone", tiny_backbone_dir, "--train-file", str(demo_sample_csv), "--task",
                                "sentiment:multiclass", "--output-dir", str(out), "--report-to", "none",
                                "--disable-tqdm", "true"]) == 0
    settings = json.loads((out / "tokenizer_config.json").read_text())
    assert "is_local" not in settings and "local_files_only" not in settings
    assert settings["tokenizer_class"] == "BertTokenizer"
    assert json.loads((out / "config.json").read_text())["max_length"] == 128
