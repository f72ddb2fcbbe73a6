"""training.embedding_cache: when it is valid, what its key depends on, and that training on it is training."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT, tiny_backbone_config
from safetensors.torch import load_file

import train_enhanced
from modeling import MultiTaskConfig, MultiTaskModel
from training.arguments import ArgumentError
from training.embedding_cache import cache_key, cache_plan, embed, encoder_fingerprint


@pytest.mark.parametrize("freeze, pooling, augmented, use, why", [
    ("full", "mean", False, True, "the encoder is frozen"),
    ("full", "mean_max", False, True, "the encoder is frozen"),
    ("partial", "mean", False, False, "--freeze-strategy partial trains encoder layers"),
    ("progressive", "cls", False, False, "--freeze-strategy progressive trains encoder layers"),
    ("full", "attention", False, False, "--pooling attention learns its weights over the token states"),
    ("full", "mean", True, False, "word dropout / swap change the training texts"),
])
def test_auto_uses_the_cache_exactly_where_it_is_valid(freeze, pooling, augmented, use, why):
    assert cache_plan("auto", freeze, pooling, augmented)[0] is use
    assert why in cache_plan("auto", freeze, pooling, augmented)[1]
    if not use:
        with pytest.raises(ArgumentError, match=f"--cache-embeddings on: .*{why.split()[0]}"):
            cache_plan("on", freeze, pooling, augmented)
    assert cache_plan("off", freeze, pooling, augmented) == (False, "--cache-embeddings off")


def test_the_key_changes_with_weights_tokenizer_length_and_texts():
    torch.manual_seed(0)
    model = MultiTaskModel(MultiTaskConfig(encoder_config=tiny_backbone_config(), tasks=[
        {"name": "t", "type": "binary"}]))
    weights = encoder_fingerprint(model.encoder)
    base = cache_key(weights, "tok", 128, ["a", "b"])
    assert base == cache_key(encoder_fingerprint(model.encoder), "tok", 128, ["a", "b"])
    with torch.no_grad():
        model.encoder.encoder.layer[1].output.dense.bias[0] += 1e-3
    assert encoder_fingerprint(model.encoder) != weights
    others = [cache_key(encoder_fingerprint(model.encoder), "tok", 128, ["a", "b"]),
              cache_key(weights, "tok2", 128, ["a", "b"]), cache_key(weights, "tok", 64, ["a", "b"]),
              cache_key(weights, "tok", 128, ["a", "c"]), cache_key(weights, "tok", 128, ["ab"])]
    assert len({base, *others}) == 6


@pytest.mark.parametrize("pooling", ["cls", "mean", "max", "mean_max"])
def test_cached_vectors_are_what_the_model_pools(pooling, tokenizer):
    from data.collator import POOLED_COLUMNS
    from data.tokenization import tokenize_texts

    config = MultiTaskConfig(encoder_config=tiny_backbone_config(vocab_size=len(tokenizer)), pooling=pooling,
                             tasks=[{"name": "t", "type": "binary"}])
    model = MultiTaskModel(config).eval()
    texts = ["short", "a much longer text than the first one, with commas", "mid length text"]
    ids = tokenize_texts(texts, tokenizer, 32, cache_dir=None)
    cached = embed(model.encoder, ids, tokenizer, "test")
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        pooled = model(**batch).pooled_output
    expected = torch.cat([torch.from_numpy(cached[c]) for c in POOLED_COLUMNS[pooling]], dim=1)
    torch.testing.assert_close(expected, pooled, atol=1e-5, rtol=1e-5)


def train(tmp_path, backbone, csv, name, *flags):
    out = tmp_path / name
    argv = ["--backbone", backbone, "--train-file", str(csv), "--task", "sentiment:multiclass", "--task",
            "markers:multilabel:mention,hashtag", "--task", "confidence:regression", "--freeze-strategy", "full",
            "--epochs", "2", "--batch-size", "8", "--seed", "3", "--disable-tqdm", "true", "--report-to", "none",
            "--embedding-cache-dir", str(tmp_path / "cache"), "--output-dir", str(out), *flags]
    assert train_enhanced.main(argv) == 0
    return out


def test_training_on_the_cache_equals_training_through_the_encoder(tmp_path, tiny_backbone_dir, demo_sample_csv,
                                                                   caplog):
    with caplog.at_level("INFO"):
        cached = train(tmp_path, tiny_backbone_dir, demo_sample_csv, "cached", "--cache-embeddings", "on")
        assert caplog.text.count("embedding cache: built") == 3
        plain = train(tmp_path, tiny_backbone_dir, demo_sample_csv, "plain", "--cache-embeddings", "off")
        again = train(tmp_path, tiny_backbone_dir, demo_sample_csv, "again", "--pooling", "max")
    assert caplog.text.count("embedding cache: reused") == 3  # another pooling, same encoder output
    first, second = load_file(cached / "model.safetensors"), load_file(plain / "model.safetensors")
    for name, value in first.items():
        torch.testing.assert_close(value, second[name], atol=1e-5, rtol=1e-4, msg=name)
    assert any(k.startswith("encoder.") for k in first)  # a full model: predict.py and the export need nothing else
    metrics = [json.loads((folder / "metrics.json").read_text()) for folder in (cached, plain)]
    assert metrics[0]["score"] == pytest.approx(metrics[1]["score"], abs=1e-4)
    for task in ("sentiment", "markers", "confidence"):
        assert metrics[0]["tasks"][task]["metrics"] == pytest.approx(metrics[1]["tasks"][task]["metrics"], abs=1e-4)
    assert (again / "model.safetensors").is_file()


def test_cache_on_where_it_is_not_valid_is_refused_before_loading(tmp_path, capsys):
    code = train_enhanced.main(["--cache-embeddings", "on", "--pooling", "attention", "--freeze-strategy", "full",
                                "--output-dir", str(tmp_path / "run")])
    assert code == 2 and not (tmp_path / "run").exists()
    assert "--cache-embeddings on: --pooling attention learns its weights" in capsys.readouterr().err


def test_two_processes_build_the_cache_once_and_both_read_it(tmp_path, tiny_backbone_dir, demo_sample_csv):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(port), "train_enhanced.py", "--use-cpu", "true", "--backbone", tiny_backbone_dir,
               "--train-file", str(demo_sample_csv), "--task", "sentiment:multiclass", "--freeze-strategy", "full",
               "--cache-embeddings", "on", "--embedding-cache-dir", str(tmp_path / "cache"), "--batch-size", "8",
               "--disable-tqdm", "true", "--report-to", "none", "--output-dir", str(tmp_path / "run")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("embedding cache: built") == 3  # train, validation, test: by the main process
    assert result.stderr.count("embedding cache: reused") == 3  # and read from disk by the other one
    assert len(list((tmp_path / "cache").iterdir())) == 3
