"""Kill a real training run, resume it, and get exactly the run that was never interrupted.

Each case trains a tiny BERT on 72 real tweets in a subprocess: once without interruption, and once killed with
SIGKILL right after a checkpoint (fixed per case, so a failure reproduces). Before resuming, a half-written newer
checkpoint is left where a kill during a checkpoint write would leave one. The resumed run must skip it (with a
warning) and end with the same weights, the same per-step losses and the same test metrics as the uninterrupted run.
The cases cover both samplers, augmentation, and every loss-weighting strategy and schedule whose state is
checkpointed. A finished run resumed again trains no further step.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT
from safetensors.torch import load_file

STEPS, EVERY = 48, 6
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
TIMING_KEYS = ("runtime", "per_second", "train_loss", "total_flos")


def command(env_dirs, out: Path, *extra: str) -> list[str]:
    backbone, csv, cache = env_dirs
    return [sys.executable, "train_enhanced.py", "--backbone", backbone, "--train-file", str(csv),
            "--task", "sentiment:multiclass", "--task", "markers:multilabel:mention,hashtag",
            "--task", "confidence:regression", "--batch-size", "8", "--max-steps", str(STEPS), "--logging-steps", "1",
            "--eval-strategy", "steps", "--eval-steps", str(EVERY), "--save-strategy", "steps", "--save-steps",
            str(EVERY), "--save-total-limit", "2", "--seed", "0", "--disable-tqdm", "true", "--report-to", "none",
            "--data-cache-dir", str(cache), "--dataloader-num-workers", "0", "--output-dir", str(out), *extra]


def finish(cmd: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def kill_after_checkpoint(cmd: list[str], out: Path, step: int) -> None:
    """Start the run and SIGKILL it as soon as `checkpoint-<step>` is complete (the run is then mid-way)."""
    process = subprocess.Popen(cmd, cwd=REPO_ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / f"checkpoint-{step}" / "trainer_state.json"
    deadline = time.monotonic() + 300
    while not written(state, step) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (out / "model.safetensors").exists()


def written(state: Path, step: int) -> bool:
    """Is this trainer_state.json whole (the checkpoint's last file, not written atomically)?"""
    try:
        return json.loads(state.read_text())["global_step"] == step
    except (OSError, ValueError, KeyError):
        return False


def leave_half_written_checkpoint(out: Path) -> Path:
    """What a kill during a checkpoint write leaves: a newer folder with weights but no trainer_state.json."""
    newest = max(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    half = out / f"checkpoint-{int(newest.name.split('-')[1]) + EVERY}"
    shutil.copytree(newest, half)
    (half / "trainer_state.json").unlink()
    (half / "optimizer.pt").write_bytes(b"")
    return half


def comparable_history(out: Path) -> list[dict]:
    history = json.loads((out / "metrics.json").read_text())["log_history"]
    return [{k: v for k, v in entry.items() if not any(t in k for t in TIMING_KEYS)} for entry in history]


def test_finished_run_resumed_again_trains_no_further(tmp_path, tiny_backbone_dir, demo_sample_csv):
    dirs = (tiny_backbone_dir, demo_sample_csv, tmp_path / "cache")
    out = tmp_path / "run"
    finish(command(dirs, out, "--max-steps", "12"))
    before = load_file(out / "model.safetensors")
    again = finish(command(dirs, out, "--max-steps", "12", "--resume"))
    assert "had finished training; evaluating and saving only" in again.stderr
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-6"]
    after = load_file(out / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(("sampling", "kill_step"), [
    (["--word-dropout", "0.3"], 12),
    (["--weighted-sampling", "sentiment", "--loss-weighting", "uncertainty"], 24),
    (["--loss-weighting", "dwa", "--loss-weighting-interval", "4", "--task-weight-schedule", "confidence=0:0,0.5:1"],
     18),
    (["--loss-weighting", "inverse_variance", "--loss-weighting-interval", "5", "--loss-weighting-window", "6",
      "--dropout-schedule", "0:0.1,0.5:0.2,1:0.15"], 30)],
    ids=["group_by_length+word_dropout", "weighted_sampling+uncertainty", "dwa+curriculum",
         "inverse_variance+dropout_schedule"])
def test_killed_and_resumed_run_equals_the_uninterrupted_run(tmp_path, tiny_backbone_dir, demo_sample_csv,
                                                            sampling, kill_step):
    dirs = (tiny_backbone_dir, demo_sample_csv, tmp_path / "cache")
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    finish(command(dirs, reference, *sampling))
    trained = max(entry["step"] for entry in comparable_history(reference))
    assert trained > kill_step, f"the reference run ended at step {trained}: a kill at {kill_step} is not mid-run"
    kill_after_checkpoint(command(dirs, interrupted, *sampling), interrupted, kill_step)
    half = leave_half_written_checkpoint(interrupted)
    resumed = finish(command(dirs, interrupted, *sampling, "--resume"))
    said = [line for line in resumed.stderr.splitlines() if "--resume" in line]
    assert any(f"skipping {half}" in line for line in said), said
    assert any("--resume: continuing from" in line for line in said), said
    expected, got = load_file(reference / "model.safetensors"), load_file(interrupted / "model.safetensors")
    assert expected.keys() == got.keys()
    different = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not different, f"killed after checkpoint-{kill_step}: {len(different)} tensors differ, e.g. {different[:3]}"
    assert comparable_history(interrupted) == comparable_history(reference)
    report = json.loads((interrupted / "metrics.json").read_text())
    assert report["score"] == json.loads((reference / "metrics.json").read_text())["score"]
