"""training.outputs: the output folder is swapped in whole, keeps its checkpoints, and recovers from a killed save."""

from __future__ import annotations

import os
import stat

import pytest

from training import outputs
from training.outputs import READY, publish, recover_interrupted, staging_folder


def write(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def test_publish_swaps_in_the_new_model_and_keeps_the_checkpoints(tmp_path):
    target = tmp_path / "run"
    write(target, **{"config.json": "old", "tokenizer.json": "old"})
    write(target / "checkpoint-4", **{"trainer_state.json": "{}"})
    staging = staging_folder(target)
    assert staging.parent == tmp_path and staging.name.startswith(".run.saving-")
    write(staging, **{"config.json": "new", "tokenizer.json": "new"})
    publish(staging, target)
    assert (target / "config.json").read_text() == "new" and (target / "checkpoint-4" / "trainer_state.json").exists()
    assert not staging.exists() and not (target / READY).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the old model's files are gone


def test_publish_without_the_atomic_exchange_uses_two_renames(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "exchange", lambda a, b: False)
    target = tmp_path / "run"
    write(target, **{"config.json": "old"})
    staging = staging_folder(target)
    write(staging, **{"config.json": "new"})
    publish(staging, target)
    assert (target / "config.json").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_first_publish_and_normal_folder_mode(tmp_path):
    previous = os.umask(0o022)
    try:
        staging = staging_folder(tmp_path / "out" / "run")
        write(staging, **{"config.json": "x"})
        target = publish(staging, tmp_path / "out" / "run")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


def test_recover_folds_a_partial_staging_folder_back(tmp_path):
    target = tmp_path / "run"
    write(target, **{"config.json": "old"})
    staging = tmp_path / ".run.saving-123"
    write(staging, **{"model.safetensors": "half"})  # killed while the final save was writing
    write(staging / "checkpoint-6", **{"trainer_state.json": "{}"})  # ... after the checkpoints moved over
    recover_interrupted(target)
    assert (target / "config.json").read_text() == "old" and (target / "checkpoint-6").is_dir()
    assert not staging.exists()


def test_recover_completes_a_publish_killed_between_the_two_renames(tmp_path):
    target = tmp_path / "run"
    write(tmp_path / ".run.retired-123", **{"config.json": "old"})
    staging = tmp_path / ".run.saving-123"
    write(staging, **{"config.json": "new", READY: ""})
    recover_interrupted(target)
    assert (target / "config.json").read_text() == "new" and not (target / READY).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_publish_refuses_a_file(tmp_path):
    (tmp_path / "run").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        publish(staging_folder(tmp_path / "run"), tmp_path / "run")
