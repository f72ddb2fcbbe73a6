"""training.run: the summary table, the saved folder, and --push-to-hub through the Trainer (local Hub stand-in)."""

from __future__ import annotations

import huggingface_hub.constants
import numpy as np
from conftest import committed_files
from test_trainer import make_trainer

from training.metrics import build_compute_metrics
from training.reporting import build_report
from training.run import format_summary


def toy_report(model) -> dict:
    rng = np.random.default_rng(0)
    logits = {"topic": rng.normal(size=(12, 3)), "flags": rng.normal(size=(12, 3)), "spam": rng.normal(size=12),
              "score": rng.normal(size=(12, 1))}
    labels = {"topic": rng.integers(0, 3, 12), "flags": (rng.random((12, 3)) < 0.5).astype(float),
              "spam": (rng.random(12) < 0.5).astype(float), "score": rng.normal(size=(12, 1))}
    return build_report(list(model.config.tasks), logits, labels, thresholds={"flags": {"x": 0.2, "y": 0.5, "z": 0.5}})


def test_summary_table_lists_every_task_and_the_fitted_and_default_thresholds(tmp_path, tokenizer):
    trainer = make_trainer(tmp_path, tokenizer)
    table = format_summary(toy_report(trainer.model))
    lines = table.splitlines()
    assert lines[0].startswith("Results on test (12 rows); score ")
    assert {line.split()[0] for line in lines[2:]} == {"topic", "flags", "spam", "score"}
    assert any("(0.5: " in line for line in lines if line.startswith("flags"))  # x has a fitted threshold


def test_push_to_hub_through_the_trainer_uploads_model_code_and_our_card(tmp_path, tokenizer, hub, monkeypatch):
    url = f"http://127.0.0.1:{hub.server_port}"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", url)
    trainer = make_trainer(tmp_path, tokenizer, num_train_epochs=1, push_to_hub=True, hub_model_id="tester/toy",
                           hub_token="hf_local_test", hub_strategy="end")
    trainer.compute_metrics = build_compute_metrics(trainer.model.config.tasks)
    trainer.train()
    trainer.push_to_hub(report=toy_report(trainer.model), data_description={"splits": {"train": 96}})
    files = committed_files(hub.requests)
    assert {"model.safetensors", "config.json", "modeling_multitask.py", "pooling.py", "README.md"} <= set(files)
    card = files["README.md"].decode()
    assert "Multi-task text classifier" in card and "tester/toy" in card
    assert "topic" in card and "flags" in card
    repo_calls = [(path, auth) for path, auth, _ in hub.requests if path.startswith(("/api/repos", "/api/models"))]
    assert [path for path, _ in repo_calls][0] == "/api/repos/create"
    assert all(auth == "Bearer hf_local_test" for _, auth in repo_calls)


def test_a_run_killed_during_its_final_save_leaves_the_previous_model_whole(tmp_path, tiny_backbone_dir,
                                                                            demo_sample_csv, monkeypatch):
    import os
    import stat

    import pytest

    import train_enhanced
    from training.trainer import MultiTaskTrainer

    out = tmp_path / "run"
    flags = ["--backbone", tiny_backbone_dir, "--train-file", str(demo_sample_csv), "--task", "sentiment:multiclass",
             "--batch-size", "16", "--disable-tqdm", "true", "--report-to", "none", "--output-dir", str(out)]
    previous = os.umask(0o022)
    try:
        assert train_enhanced.main(flags) == 0
    finally:
        os.umask(previous)
    first = {name: (out / name).read_bytes() for name in ("config.json", "model.safetensors", "tokenizer.json")}
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in out.iterdir() if path.is_file()}
    assert set(modes.values()) == {0o644}, modes  # plain files, not the 0600 of a temporary file
    real_save = MultiTaskTrainer.save_model

    def killed_after_the_weights(self, output_dir=None, _internal_call=False):
        real_save(self, output_dir, _internal_call)
        if not _internal_call:  # checkpoints call it too
            raise KeyboardInterrupt("killed during the final save")

    monkeypatch.setattr(MultiTaskTrainer, "save_model", killed_after_the_weights)
    with pytest.raises(KeyboardInterrupt):
        train_enhanced.main([*flags, "--seed", "7"])
    assert {name: (out / name).read_bytes() for name in first} == first  # the previous complete model
    assert list(tmp_path.glob(".run.saving-*"))  # the interrupted save, beside it
    monkeypatch.setattr(MultiTaskTrainer, "save_model", real_save)
    assert train_enhanced.main([*flags, "--seed", "7"]) == 0
    assert not list(tmp_path.glob(".run.*")) and (out / "config.json").read_bytes() != first["config.json"]
