"""hyperparameter_search.py as a user runs it: tiny BERT, 72 real tweets, a small space, a SQLite study."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import optuna
import pytest
import yaml
from conftest import REPO_ROOT
from sqlalchemy.exc import IntegrityError

import hyperparameter_search
import train_enhanced
import training.search_run
from training.arguments import ArgumentError

SPACE = {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
         "head_lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
         "pooling": {"type": "categorical", "choices": ["mean", "cls"]},
         "dropout": {"type": "float", "low": 0.0, "high": 0.3}}
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


@pytest.fixture
def flags(tmp_path, tiny_backbone_dir, demo_sample_csv):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    return ["--backbone", tiny_backbone_dir, "--train-file", str(demo_sample_csv), "--task", "sentiment:multiclass",
            "--task", "confidence:regression", "--batch-size", "16", "--epochs", "2", "--disable-tqdm", "true",
            "--report-to", "none", "--data-cache-dir", str(tmp_path / "cache"), "--embedding-cache-dir",
            str(tmp_path / "embeddings"), "--search-space", str(space),
            "--output-dir", str(tmp_path / "search")]


def study(tmp_path, name: str = "multitask"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'search' / 'study.db'}")


def states(found) -> list[str]:
    return [t.state.name for t in found.trials]


def test_the_best_trials_model_is_saved_and_a_rerun_tops_the_study_up(tmp_path, flags, caplog):
    with caplog.at_level("INFO"):
        assert hyperparameter_search.main([*flags, "--n-trials", "2"]) == 0
    out = tmp_path / "search"
    first = study(tmp_path)
    assert states(first) == ["COMPLETE", "COMPLETE"]
    best = json.loads((out / "best.json").read_text())
    assert best["trial"] == first.best_trial.number and best["objective"] == pytest.approx(first.best_value)
    report = json.loads((out / "best" / "metrics.json").read_text())
    assert report["split"] == "test" and "sentiment" in report["tasks"]
    from modeling import MultiTaskModel

    model = MultiTaskModel.from_pretrained(out / "best")
    assert model.config.pooling == first.best_trial.params["pooling"]
    assert {"trials.csv", "plots", "best_flags.yaml", "study.db"} <= {p.name for p in out.iterdir()}
    assert (out / "plots" / "optimization_history.png").stat().st_size > 1000
    assert not (out / "trials").exists()  # trial checkpoints are dropped
    caplog.clear()
    with caplog.at_level("INFO"):
        assert hyperparameter_search.main([*flags, "--n-trials", "3"]) == 0
    assert "2 finished trial(s), 1 to run" in caplog.text and len(study(tmp_path).trials) == 3
    best_flags = yaml.safe_load((out / "best_flags.yaml").read_text())
    assert best_flags["pooling"] == study(tmp_path).best_trial.params["pooling"]
    assert train_enhanced.main(["--config", str(out / "best_flags.yaml"), "--output-dir", str(tmp_path / "again"),
                                "--data-cache-dir", str(tmp_path / "cache")]) == 0


def test_a_searched_loss_weighting_wins_over_the_fixed_uncertainty_alias(tmp_path, flags):
    (tmp_path / "space.yaml").write_text(yaml.safe_dump({"loss_weighting": {"type": "categorical",
                                                                            "choices": ["dwa"]}}))
    assert hyperparameter_search.main([*flags, "--use-uncertainty-weighting", "--n-trials", "1", "--no-pruning"]) == 0
    assert states(study(tmp_path)) == ["COMPLETE"]
    best_flags = yaml.safe_load((tmp_path / "search" / "best_flags.yaml").read_text())
    assert best_flags["loss_weighting"] == "dwa" and not best_flags.get("use_uncertainty_weighting")


def test_pruning_acts_at_an_evaluation_inside_a_trial(tmp_path, flags, monkeypatch):
    monkeypatch.setattr(training.search_run, "make_pruner", lambda name: optuna.pruners.ThresholdPruner(
        lower=1e9))  # every reported objective is below: prune at the first evaluation
    assert hyperparameter_search.main([*flags, "--n-trials", "2", "--evals-per-epoch", "2"]) == 0
    found = study(tmp_path)
    assert states(found) == ["PRUNED", "PRUNED"]
    assert all(len(t.intermediate_values) == 1 for t in found.trials)  # stopped at its first of 4 evaluations
    assert not (tmp_path / "search" / "best").exists()


def run_worker(flags, n_trials: int, *extra: str) -> subprocess.Popen:
    """A search process whose output goes to a temporary file (read by `finish`), so it never waits on a full pipe."""
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen([sys.executable, "hyperparameter_search.py", *flags, "--n-trials", str(n_trials),
                                *extra], cwd=REPO_ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT, text=True)
    process.log = log
    return process


def finish(worker: subprocess.Popen) -> str:
    """Wait for a worker; its exit code must be 0. Returns its output."""
    worker.wait(timeout=600)
    worker.log.seek(0)
    output = worker.log.read()
    assert worker.returncode == 0, output[-2000:]
    return output


def test_two_workers_share_one_study(tmp_path, flags):
    workers = [run_worker(flags, 4), run_worker(flags, 4)]
    ran = [[int(n) for n in re.findall(r"trial (\d+) (?:finished|pruned) in", finish(w))] for w in workers]
    found = study(tmp_path)
    finished = [t for t in found.trials if t.state.name == "COMPLETE"]
    assert 4 <= len(finished) <= 5  # a worker that starts a trial while the other finishes the 4th may add one
    trained = sorted(t.number for t in found.trials if not t.user_attrs.get("skipped"))  # not over the budget
    assert sorted(ran[0] + ran[1]) == trained  # every trial run once, by one worker


def test_a_worker_that_loses_the_race_to_create_the_tables_opens_the_storage_on_retry(tmp_path, monkeypatch):
    real, calls = optuna.storages.RDBStorage, []

    def racing(url, **kwargs):  # the first try meets tables another worker is creating
        calls.append(url)
        storage = real(url, **kwargs)
        if len(calls) == 1:
            raise IntegrityError("INSERT INTO alembic_version", {}, Exception("UNIQUE constraint failed"))
        return storage

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    monkeypatch.setattr(training.search_run.time, "sleep", lambda seconds: None)
    assert isinstance(training.search_run.open_storage(None, tmp_path), real) and len(calls) == 2


def test_a_storage_that_cannot_open_is_one_line_without_retries(tmp_path, monkeypatch):
    real, calls = optuna.storages.RDBStorage, []
    monkeypatch.setattr(optuna.storages, "RDBStorage", lambda url, **kwargs: calls.append(url) or real(url, **kwargs))
    monkeypatch.setattr(training.search_run.time, "sleep", lambda seconds: None)
    url = f"sqlite:///{tmp_path}/no/such/folder/study.db"
    with pytest.raises(ArgumentError, match=f"--storage {url}: cannot be opened .*unable to open database file"):
        training.search_run.open_storage(url, tmp_path)
    assert len(calls) == 1  # only the table-creation race is retried


def test_a_trial_whose_process_died_is_run_again(tmp_path, flags):
    worker = run_worker(flags, 2, "--heartbeat-interval", "1")
    trial_folder = tmp_path / "search" / "trials" / "run-0"
    deadline = time.monotonic() + 300
    while not trial_folder.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    time.sleep(4)  # three silent heartbeats
    finish(run_worker(flags, 2, "--heartbeat-interval", "1"))
    found = study(tmp_path)
    assert found.trials[0].state.name == "FAIL"
    retried = [t for t in found.trials if t.system_attrs.get("failed_trial") == 0]
    assert len(retried) == 1 and retried[0].params == found.trials[0].params and retried[0].state.name == "COMPLETE"
    assert sum(t.state.name == "COMPLETE" for t in found.trials) == 2


def test_the_fast_stage_puts_its_best_heads_only_settings_first(tmp_path, flags, caplog):
    with caplog.at_level("INFO"):
        assert hyperparameter_search.main([*flags, "--fast-trials", "2", "--n-trials", "1", "--no-pruning"]) == 0
    heads, main = study(tmp_path, "multitask-heads"), study(tmp_path)
    assert states(heads) == ["COMPLETE", "COMPLETE"] and "embedding cache: built train" in caplog.text
    assert set(heads.best_trial.params) == {"head_lr", "pooling", "dropout"}  # heads-only part of the space
    first = main.trials[0].params
    assert {k: first[k] for k in heads.best_trial.params} == heads.best_trial.params


@pytest.mark.parametrize("extra, message", [
    (["--n-trials", "0"], "--n-trials 0: must be >= 1"),
    (["--objective", "mood:macro_f1"], "--objective 'mood:macro_f1': unknown task 'mood'"),
    (["--objective", "confidence:macro_f1"], "is not a metric of regression task 'confidence'"),
    (["--storage", "nosuchdb://x"], "--storage nosuchdb://x: cannot be opened"),
    (["--pruner", "asha"], "--pruner 'asha': choose one of"),
])
def test_bad_search_flags_are_refused_before_any_trial(tmp_path, flags, capsys, extra, message):
    assert hyperparameter_search.main([*flags, *extra]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "search" / "trials").exists()


def test_a_bad_space_file_is_refused_before_anything_loads(tmp_path, flags, capsys):
    (tmp_path / "space.yaml").write_text("dropout: {type: float, low: 0.5, high: 0.1}\n")
    assert hyperparameter_search.main(flags) == 2
    assert "dropout: empty range" in capsys.readouterr().err
