"""Helpers shared by the inference tests: a tiny 4-task model saved like a trained one, and script runners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

TASKS = [
    {"name": "sentiment", "type": "multiclass", "labels": ["negative", "neutral", "positive"]},
    {"name": "emotions", "type": "multilabel", "labels": ["anger", "joy", "fear"]},
    {"name": "ei", "type": "binary", "labels": ["I", "E"]},
    {"name": "vad", "type": "regression", "labels": ["V", "A", "D"], "target_mean": [3.0, 2.9, 3.1],
     "target_std": [0.4, 0.3, 0.2]},
]
# Extreme thresholds so their effect is visible on an untrained model: joy is always on, anger never.
THRESHOLDS = {"emotions": {"joy": 0.0, "anger": 1.0}, "ei": {"E": 0.6}}
TEMPERATURES = {"sentiment": 1.7, "ei": 0.8}
TEXTS = [
    "I love this so much, best day ever!",
    "",
    "The meeting was moved to Thursday.",
    "ugh",
    "Why does my phone always die right when I need it the most, every single time, without fail?",
    "Grateful for friends who show up.",
    "   ",
    "Ce film était vraiment magnifique 😊",
]


def build_tiny_model(tokenizer, kind: str = "bert", seed: int = 0):
    """A hidden-32 model with the four task types; head outputs widened so probabilities are far from uniform."""
    import torch
    from conftest import tiny_backbone_config

    from modeling import MultiTaskConfig, MultiTaskModel

    config = MultiTaskConfig(
        encoder_config=tiny_backbone_config(kind, vocab_size=len(tokenizer)).to_dict(), tasks=TASKS,
        thresholds=THRESHOLDS, temperatures=TEMPERATURES, head_hidden_dims=[16],
    )
    torch.manual_seed(seed)
    model = MultiTaskModel(config).eval()
    with torch.no_grad():
        for head in model.heads.values():
            head.output.weight.normal_(0.0, 1.0)
    return model


def save_tiny_model(folder: Path, tokenizer, kind: str = "bert") -> Path:
    """Save model, tokenizer and model card the way a training run leaves its output folder."""
    from training.model_card import write_model_card

    model = build_tiny_model(tokenizer, kind)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "all_results.json").write_text(json.dumps({"eval_sentiment_macro_f1": 0.5, "epoch": 1.0}))
    write_model_card(folder, training_args={"learning_rate": 5e-5, "num_train_epochs": 1, "seed": 0},
                     data="Tiny test model: no real data.")
    return folder


def script_env(**extra: str) -> dict[str, str]:
    """Environment for running a repo script in a subprocess: offline, quiet, repo importable."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO_ROOT)}
    env.update(extra)
    return env


def run_script(script: str, *args: str, stdin: bytes | None = None, timeout: int = 120,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python <repo>/<script> args...` and capture bytes of stdout/stderr."""
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / script), *args], input=stdin, capture_output=True, timeout=timeout,
        env=script_env(), cwd=cwd or REPO_ROOT,
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
