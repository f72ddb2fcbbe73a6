"""training.checkpoints: which checkpoint can be resumed from, and whether its run had finished."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from training.checkpoints import finished_training, incomplete_reason, last_complete_checkpoint, planned_steps


def make_checkpoint(root, step: int, **state):
    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    save_file({"w": torch.ones(2)}, str(folder / "model.safetensors"))
    for name in ("training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (folder / name).write_bytes(b"x")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, **state}))
    return folder


@pytest.mark.parametrize("damage, reason", [
    (lambda f: (f / "trainer_state.json").unlink(), "no readable trainer_state.json"),
    (lambda f: (f / "trainer_state.json").write_text('{"global_st'), "no readable trainer_state.json"),
    (lambda f: (f / "scheduler.pt").unlink(), "scheduler.pt is missing or empty"),
    (lambda f: (f / "optimizer.pt").write_bytes(b""), "optimizer.pt is missing or empty"),
    (lambda f: [p.unlink() for p in f.glob("rng_state*")], "no rng_state"),
    (lambda f: (f / "model.safetensors").write_bytes(b"\x10\x00"), "corrupt or truncated"),
    (lambda f: (f / "trainer_state.json").write_text('{"global_step": 9}'), "names step 9, not 4"),
])
def test_incomplete_checkpoints_are_named_with_the_reason(tmp_path, damage, reason):
    folder = make_checkpoint(tmp_path, 4)
    assert incomplete_reason(folder) is None
    damage(folder)
    assert reason in incomplete_reason(folder)


def test_last_complete_checkpoint_skips_a_half_written_one(tmp_path, caplog):
    make_checkpoint(tmp_path, 2)
    good = make_checkpoint(tmp_path, 10)
    (make_checkpoint(tmp_path, 12) / "trainer_state.json").unlink()
    (tmp_path / "checkpoint-14").mkdir()
    assert last_complete_checkpoint(tmp_path) == good
    assert "skipping" in caplog.text and "checkpoint-14" in caplog.text and "checkpoint-12" in caplog.text
    assert last_complete_checkpoint(tmp_path / "nothing") is None


def test_finished_training_by_steps_or_by_early_stopping(tmp_path):
    done = make_checkpoint(tmp_path, 8)
    assert finished_training(done, planned_steps(-1, 2.0, 4)) and not finished_training(done, planned_steps(10, 2, 4))
    stopped = make_checkpoint(tmp_path, 3, stateful_callbacks={"EarlyStoppingCallback": {
        "args": {"early_stopping_patience": 2}, "attributes": {"early_stopping_patience_counter": 2}}})
    assert finished_training(stopped, 8)
    waiting = make_checkpoint(tmp_path, 5, stateful_callbacks={"EarlyStoppingCallback": {
        "args": {"early_stopping_patience": 2}, "attributes": {"early_stopping_patience_counter": 1}}})
    assert not finished_training(waiting, 8)
