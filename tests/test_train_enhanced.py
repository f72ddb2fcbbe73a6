"""train_enhanced.py as a user runs it: subprocesses on tiny real data with the packaged MiniLM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT

from modeling import MultiTaskModel

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "2"}
TINY_RUN = ["--max-eval-samples", "32", "--epochs", "1", "--batch-size", "16", "--logging-steps", "2",
            "--dataloader-num-workers", "0", "--disable-tqdm", "true"]


def run(args: list[str], launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    command = [*(launcher or [sys.executable]), "train_enhanced.py", *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=600)


def test_goemotions_emobank_merge_trains_and_the_saved_folder_loads(tmp_path, shared_data):
    out = tmp_path / "run"
    result = run(["--tasks-file", "examples/goemotions_emobank.yaml", "--max-train-samples", "64", *TINY_RUN,
                  "--use-uncertainty-weighting", "--weighted-sampling", "emotions", "--word-dropout", "0.3",
                  "--output-dir", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "emotions" in result.stdout and "vad" in result.stdout and "macro_f1" in result.stdout
    model = MultiTaskModel.from_pretrained(out)
    assert model.config.task_names == ["emotions", "vad"]
    assert set(model.config.thresholds["emotions"]) == set(model.config.get_task("emotions")["labels"])
    assert "emotions" in model.config.temperatures
    assert any(name.startswith("uncertainty") for name, _ in model.named_parameters())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "test" and set(metrics["tasks"]) == {"emotions", "vad"}
    arguments = json.loads((out / "arguments.json").read_text())
    assert arguments["data"]["weighted_sampling"] == "emotions"
    assert (out / "README.md").is_file() and (out / "report.md").is_file()
    assert (out / "tokenizer.json").is_file()
    ids = torch.tensor([[101, 7592, 2088, 102]])
    logits = model.eval()(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert logits["emotions"].shape == (1, 28) and logits["vad"].shape == (1, 3)
    assert ((logits["vad"] >= 1) & (logits["vad"] <= 5)).all()


def test_accelerate_launch_with_partial_freezing(tmp_path):
    out = tmp_path / "run"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    result = run(["--freeze-strategy", "partial", "--freeze-layers", "4", "--max-train-samples", "48", *TINY_RUN,
                  "--output-dir", str(out)], launcher=launcher)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sentiment" in result.stdout and "confidence" in result.stdout
    assert "trainable parameters" in result.stderr
    assert (out / "model.safetensors").is_file()


def test_two_processes_on_cpu_shard_the_weighted_sampler(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "run"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(port)]
    result = run(["--use-cpu", "true", "--max-train-samples", "64", *TINY_RUN, "--weighted-sampling", "sentiment",
                  "--output-dir", str(out)], launcher=launcher)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads(next(out.glob("checkpoint-*/trainer_state.json")).read_text())
    assert state["global_step"] == 2  # 64 rows / (16 per process x 2 processes): each process drew its own half
    assert result.stdout.count("Results on test") == 1  # only the main process reports and saves
    assert (out / "model.safetensors").is_file()


def test_contradictory_flags_fail_at_start_up_with_one_line(tmp_path):
    result = run(["--freeze-strategy", "partial", "--freeze-layers", "9", "--output-dir", str(tmp_path / "run")])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "train_enhanced.py: error: --freeze-layers 9: the encoder has only 6 layers")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--freeze-strategy", "progressive", "--unfreeze-schedule", "1:2,2:12"], "unfreezes 12 layers"),
        (["--fp16"], "--fp16 needs a CUDA GPU"),
        (["--weighted-sampling", "nosuch"], "--weighted-sampling 'nosuch'"),
        (["--pooling", "median"], "--pooling 'median'"),
        (["--task-weight", "sentiment=-1"], "--task-weight 'sentiment=-1'"),
        (["--task-weight", "mood=2"], "--task-weight names unknown tasks ['mood']"),
        (["--eval-strategy", "sometimes"], "sometimes is not a valid IntervalStrategy"),
        (["--batch-size", "0"], "--per-device-train-batch-size 0: must be >= 1"),
        (["--per-device-eval-batch-size", "-2"], "--per-device-eval-batch-size -2: must be >= 1"),
        (["--lr", "-1"], "--learning-rate -1.0: must be a number > 0"),
        (["--head-lr", "0"], "--head-lr 0.0: must be a number > 0"),
        (["--epochs", "0"], "--num-train-epochs 0 trains nothing: give --num-train-epochs > 0 or --max-steps > 0"),
        (["--max-steps", "0"], "--max-steps 0: must be > 0"),
        (["--validation-split", "0"], "--eval-strategy epoch needs validation data, but --validation-split is 0"),
        (["--train-sampling-strategy", "shuffled"], "--train-sampling-strategy 'shuffled': choose one of"),
        (["--save-strategy", "steps"], 'requires the save and eval strategy to match, except when --save_strategy='
                                       '"best", but found - Evaluation strategy: IntervalStrategy.EPOCH - Save '
                                       "strategy: SaveStrategy.STEPS"),
    ],
)
def test_bad_flags_are_refused_before_training(tmp_path, capsys, flags, message):
    import train_enhanced

    assert train_enhanced.main([*flags, "--output-dir", str(tmp_path / "run"), "--max-train-samples", "64"]) == 2
    error = capsys.readouterr().err
    assert message in error and error.startswith("train_enhanced.py: error:") and error.count("\n") == 1
    assert not (tmp_path / "run").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where, message", [
    (lambda tmp: tmp / "file", "--output-dir {tmp}/file: is a file, not a folder"),
    (lambda tmp: tmp / "file" / "run", "--output-dir {tmp}/file/run: {tmp}/file is a file, so the folder cannot be "
                                       "made"),
    (lambda tmp: Path("/proc/multitask-test/run"), "--output-dir /proc/multitask-test/run: cannot create files in "
                                                   "/proc"),
])
def test_an_output_location_that_cannot_be_written_is_refused_at_once(tmp_path, capsys, where, message):
    import train_enhanced

    (tmp_path / "file").write_text("not a folder")
    assert train_enhanced.main(["--output-dir", str(where(tmp_path))]) == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err


@pytest.mark.parametrize("content, suffix", [("epochs: [1\n", ".yaml"), ('{"epochs": 1', ".json")])
def test_an_unreadable_config_file_is_one_line(tmp_path, capsys, content, suffix):
    import train_enhanced

    config = tmp_path / f"run{suffix}"
    config.write_text(content)
    assert train_enhanced.main(["--config", str(config), "--output-dir", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert f"--config {config}: cannot be read as {suffix[1:].upper()}" in error and error.count("\n") == 1
