"""Every flag of train_enhanced.py, run once through `main()` on the real data pipeline, asserting its effect.

The cases are keyed by the argument dataclass fields (`training.docs.documented_fields`, the same list the README's
flag reference is generated from), so a new flag without a case fails `test_every_flag_has_a_case`, naming it.
Each run: a tiny BERT (hidden 32, 2 layers) with the real MiniLM tokenizer, 72 real demo tweets with four tasks
(multiclass, multilabel, binary, regression), one epoch of a few steps. `fit` and `prepare` are wrapped so a check
can inspect the trainer and the data the run really used.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import train_enhanced
import training.run
from modeling.losses import class_weights_from_counts, inverse_variance_weights, pos_weight_from_counts
from training.balancing import dwa_weights
from training.docs import documented_fields, flag_groups

TASKS = ["--task", "sentiment:multiclass", "--task", "markers:multilabel:mention,hashtag",
         "--task", "question:binary", "--task", "confidence:regression"]


@dataclass
class Run:
    """What a check may look at: the output folder, the trainer and setup the run used, and its saved files."""

    out: Path
    trainer: object
    setup: object
    log: str

    @property
    def config(self) -> dict:
        return json.loads((self.out / "config.json").read_text())

    @property
    def state(self) -> dict:
        return self.trainer.state

    def task(self, name: str) -> dict:
        return next(t for t in self.config["tasks"] if t["name"] == name)

    def group_lrs(self, module) -> set[float]:
        ids = {id(p) for p in module.parameters()}
        return {g["initial_lr"] for g in self.trainer.optimizer.param_groups if any(id(p) in ids for p in g["params"])}


@dataclass
class Env:
    """Paths a case may need: the tiny backbone, the sample CSV, a scratch folder."""

    backbone: str
    csv: Path
    tmp: Path

    def write_csv(self, name: str, rows: slice = slice(None), rename: dict | None = None) -> str:
        import pandas as pd

        path = self.tmp / name
        pd.read_csv(self.csv).iloc[rows].rename(columns=rename or {}).to_csv(path, index=False)
        return str(path)


@pytest.fixture
def env(tmp_path, tiny_backbone_dir, demo_sample_csv) -> Env:
    return Env(tiny_backbone_dir, demo_sample_csv, tmp_path)


@pytest.fixture
def run(env, monkeypatch, caplog, capsys):
    """`run(*flags, data=True, out=None, expect=0)`: train_enhanced.main with the tiny backbone plus `flags` (and the
    sample CSV with its four tasks unless `data=False`); returns a `Run`."""
    seen = {}
    real_prepare, real_fit = training.run.prepare, training.run.fit

    def spy_prepare(*args, **kwargs):
        seen["setup"] = real_prepare(*args, **kwargs)
        return seen["setup"]

    def spy_fit(*args, **kwargs):
        seen["trainer"], evaluation = real_fit(*args, **kwargs)
        return seen["trainer"], evaluation

    monkeypatch.setattr(train_enhanced, "prepare", spy_prepare)
    monkeypatch.setattr(train_enhanced, "fit", spy_fit)

    def go(*flags: str, data: bool = True, out: Path | None = None, expect: int = 0) -> Run:
        out = out or env.tmp / f"run{len(list(env.tmp.glob('run*')))}"
        source = ["--train-file", str(env.csv), *TASKS] if data else []
        argv = ["--backbone", env.backbone, *source, "--batch-size", "16", "--logging-steps", "1",
                "--disable-tqdm", "true", "--report-to", "none", "--data-cache-dir", str(env.tmp / "cache"),
                "--seed", "0", *flags, "--output-dir", str(out)]
        seen.clear()
        with caplog.at_level("INFO"):
            code = train_enhanced.main(argv)
        log = caplog.text + capsys.readouterr().err
        assert code == expect, log[-3000:]
        return Run(out, seen.get("trainer"), seen.get("setup"), log)

    return go


def changed(run: Run, env: Env, prefix: str) -> bool:
    """Did training change any encoder tensor whose name starts with `prefix` (e.g. 'layer.1.', 'embeddings.')?"""
    from transformers import AutoModel

    before = AutoModel.from_pretrained(env.backbone, add_pooling_layer=False).state_dict()
    after = run.trainer.model.encoder.state_dict()
    names = [name for name in before if name.startswith(prefix)]
    assert names, prefix
    return any(not torch.equal(before[name], after[name]) for name in names)


def counts(run: Run, task: str) -> np.ndarray:
    """Training-split labels of `task` as read back from the dataset the run trained on."""
    return np.asarray(run.setup.data.raw["train"][f"labels_{task}"])


# ----- model and losses -----

def check_backbone(run, env):
    assert run.config["encoder_config"]["hidden_size"] == 32 and run.config["encoder_name_or_path"] == env.backbone


def check_class_weights(run, smoothing=1.0):
    sentiment = counts(run, "sentiment")
    expected = class_weights_from_counts(np.bincount(sentiment[sentiment >= 0], minlength=3), smoothing)
    assert run.task("sentiment")["class_weights"] == pytest.approx(expected)
    markers = counts(run, "markers")
    assert run.task("markers")["pos_weight"] == pytest.approx(
        pos_weight_from_counts((markers == 1).sum(0), (markers >= 0).sum(0), smoothing))
    question = counts(run, "question")
    assert run.task("question")["pos_weight"] == pytest.approx(
        pos_weight_from_counts([(question == 1).sum()], [(question >= 0).sum()], smoothing))
    assert run.task("confidence")["loss"] == "mse"


MODEL_CASES = {
    "backbone": ([], check_backbone),
    "pooling": (["--pooling", "max"], lambda r, t: (r.config["pooling"] == "max"
                                                    and type(r.trainer.model.pooler).__name__ == "MaxPooling")),
    "dropout": (["--dropout", "0.25"], lambda r, t: r.trainer.model.heads["sentiment"].dropout.p == 0.25),
    "head_hidden_dims": (["--head-hidden-dims", "16"], lambda r, t: [
        b.dense.out_features for b in r.trainer.model.heads["question"].blocks] == [16]),
    "head_layer_norm": (["--head-layer-norm", "false"], lambda r, t: not any(
        isinstance(m, torch.nn.LayerNorm) for m in r.trainer.model.heads.modules())),
    "head_residual": (["--head-residual", "true", "--head-hidden-dims", "384", "16"],
                      lambda r, t: all(b.residual is not None for b in r.trainer.model.heads["sentiment"].blocks)),
    "use_focal_loss": (["--use-focal-loss"], lambda r, t: (r.task("sentiment")["loss"], r.task("markers")["loss"],
                                                           r.task("confidence")["loss"]) == ("focal", "focal", "mse")),
    "focal_gamma": (["--use-focal-loss", "--focal-gamma", "1.5"],
                    lambda r, t: r.task("question")["focal_gamma"] == 1.5),
    "label_smoothing": (["--label-smoothing", "0.2"], lambda r, t: (
        r.task("sentiment")["label_smoothing"], r.task("confidence")["label_smoothing"]) == (0.2, 0)),
    "class_weights": (["--class-weights"], lambda r, t: check_class_weights(r)),
    "class_weight_smoothing": (["--class-weights", "--class-weight-smoothing", "5"],
                               lambda r, t: check_class_weights(r, 5.0)),
    "use_uncertainty_weighting": (["--use-uncertainty-weighting"], lambda r, t: (
        r.config["loss_weighting"] == "uncertainty" and r.trainer.model.uncertainty is not None
        and not torch.equal(r.trainer.model.uncertainty.log_variances.detach(), torch.zeros(4)))),
    "task_weight": (["--task-weight", "confidence=0.5"],
                    lambda r, t: (r.task("confidence")["weight"], r.task("sentiment")["weight"]) == (0.5, 1.0)),
}


# ----- data -----

def sizes(run: Run) -> dict[str, int]:
    return {split: len(dataset) for split, dataset in run.setup.data.raw.items()}


def check_tasks_file(run, env):
    assert [t["name"] for t in run.config["tasks"]] == ["mood", "asks"]
    assert run.task("mood")["labels"] == ["negative", "neutral", "positive"] and run.task("asks")["type"] == "binary"


def tasks_file(env) -> list[str]:
    path = env.tmp / "tasks.yaml"
    path.write_text(f"tasks:\n  - {{name: mood, type: multiclass, column: sentiment}}\n"
                    f"  - {{name: asks, type: binary, column: question}}\nsources:\n  train: [{env.csv}]\n")
    return ["--tasks-file", str(path)]


def dataset_folder(env) -> str:
    folder = env.tmp / "hub_like"
    folder.mkdir(exist_ok=True)
    env.write_csv("hub_like/train.csv")
    return str(folder)


def check_dataset_config(run, env, go):
    assert sizes(run)["train"] > 50
    bad = go("--dataset-name", dataset_folder(env), "--dataset-config", "nosuch", *TASKS, data=False, expect=2)
    assert "--dataset-config 'nosuch'" in bad.log and bad.trainer is None


def check_max_length(run, env):
    lengths = [len(ids) for ids in run.setup.data.tokenized["train"]["input_ids"]]
    assert run.config["max_length"] == 8 and max(lengths) == 8


def check_word_dropout(run, env):
    tokenizer, raw = run.setup.tokenizer, run.setup.data.raw
    texts = list(raw["train"]["text"])
    served = [run.trainer.train_dataset[i]["input_ids"] for i in range(len(texts))]
    plain = tokenizer(texts, truncation=True, max_length=128)["input_ids"]
    assert sum(s != p for s, p in zip(served, plain)) > len(texts) // 2  # training rows change
    assert [len(s) <= len(p) for s, p in zip(served, plain)] == [True] * len(texts)  # words dropped, none added
    evaluation = tokenizer(list(raw["validation"]["text"]), truncation=True, max_length=128)["input_ids"]
    assert list(run.setup.data.tokenized["validation"]["input_ids"]) == evaluation  # evaluation rows never do


def check_word_dropout_rate(run, env):
    augmenter = run.setup.data.augmenter
    text = " ".join(f"w{i}" for i in range(40))
    assert len(augmenter.augment(text).split()) == 20


def check_word_swap(run, env):
    texts = list(run.setup.data.raw["train"]["text"])
    served = [run.trainer.train_dataset[i]["input_ids"] for i in range(len(texts))]
    plain = run.setup.tokenizer(texts, truncation=True, max_length=128)["input_ids"]
    assert all(sorted(s) == sorted(p) for s, p in zip(served, plain))  # same tokens ...
    assert sum(s != p for s, p in zip(served, plain)) > len(texts) // 2  # ... in another order


def check_weighted_sampling(run, env, mode="mean"):
    weights = run.trainer.sample_weights
    sentiment = counts(run, "sentiment")
    expected = 1.0 / np.bincount(sentiment)[sentiment]
    np.testing.assert_allclose(weights, expected / expected.mean())
    drawn = list(run.trainer._get_train_sampler())
    assert len(drawn) == len(sentiment) and len(set(drawn)) < len(drawn)  # with replacement, by weight


def check_weighted_sampling_mode(run, env):
    weights, markers = run.trainer.sample_weights, counts(run, "markers")
    inverse = 1.0 / (markers == 1).sum(axis=0)
    both = (markers == 1).all(axis=1)
    single = (markers == 1).sum(axis=1) == 1
    ratio = weights[both][0] / weights[single & (markers[:, 1] == 1)][0]
    assert ratio == pytest.approx(inverse.max() / inverse[1])


def check_split_seed(run, env):
    from data.splitting import split_indices

    texts = list(run.setup.data.raw["train"]["text"]) + list(run.setup.data.raw["validation"]["text"]) + list(
        run.setup.data.raw["test"]["text"])
    assert len(texts) == 72
    import pandas as pd

    frame = pd.read_csv(env.csv)
    strata = frame["sentiment"].map({"negative": 0, "neutral": 1, "positive": 2}).to_numpy()
    for seed, same in ((7, True), (0, False)):
        parts = split_indices(frame["text"].tolist(), strata, {"validation": 0.1, "test": 0.1}, seed)
        assert (sorted(frame["text"][parts["validation"]]) == sorted(run.setup.data.raw["validation"]["text"])) == same


DATA_CASES = {
    "train_file": ([], lambda r, e: sum(sizes(r).values()) == 72 and set(sizes(r)) == {"train", "validation", "test"}),
    "validation_file": (lambda e: ["--validation-file", e.write_csv("val.csv", slice(0, 12))],
                        lambda r, e: sizes(r)["validation"] == 12 and sizes(r)["train"] + sizes(r)["test"] == 72),
    "test_file": (lambda e: ["--test-file", e.write_csv("test.csv", slice(0, 10))],
                  lambda r, e: json.loads((r.out / "metrics.json").read_text())["n_rows"] == 10),
    "calibration_file": (lambda e: ["--calibration-file", e.write_csv("cal.csv", slice(0, 10))], lambda r, e: (
        json.loads((r.out / "metrics.json").read_text())["calibration"]["n_rows"] == 10
        and len(r.trainer.eval_dataset) == sizes(r)["validation"])),
    "dataset_name": (lambda e: ["--dataset-name", dataset_folder(e), *TASKS],
                     lambda r, e: sum(sizes(r).values()) == 72, False),
    "dataset_config": (lambda e: ["--dataset-name", dataset_folder(e), "--dataset-config", "default", *TASKS],
                       "dataset_config", False),
    "tasks_file": (tasks_file, check_tasks_file, False),
    "task": ([], lambda r, e: [(t["name"], t["type"]) for t in r.config["tasks"]] == [
        ("sentiment", "multiclass"), ("markers", "multilabel"), ("question", "binary"), ("confidence", "regression")]),
    "text_column": (lambda e: ["--train-file", e.write_csv("body.csv", rename={"text": "body"}), "--text-column",
                               "body", *TASKS], lambda r, e: sum(sizes(r).values()) == 72, False),
    "max_length": (["--max-length", "8"], check_max_length),
    "max_train_samples": (["--max-train-samples", "20"], lambda r, e: sizes(r)["train"] == 20),
    "max_eval_samples": (["--max-eval-samples", "4"], lambda r, e: sizes(r)["validation"] == sizes(r)["test"] == 4),
    "word_dropout": (["--word-dropout", "1.0"], check_word_dropout),
    "word_dropout_rate": (["--word-dropout", "1.0", "--word-dropout-rate", "0.5"], check_word_dropout_rate),
    "word_swap": (["--word-swap", "1.0"], check_word_swap),
    "weighted_sampling": (["--weighted-sampling", "sentiment"], check_weighted_sampling),
    "weighted_sampling_mode": (["--weighted-sampling", "markers", "--weighted-sampling-mode", "max"],
                               check_weighted_sampling_mode),
    "validation_split": (["--validation-split", "0.25"], lambda r, e: sizes(r)["validation"] == 18),
    "test_split": (["--test-split", "0.25"], lambda r, e: sizes(r)["test"] == 18),
    "split_seed": (["--split-seed", "7"], check_split_seed),
    "data_cache_dir": (lambda e: ["--data-cache-dir", str(e.tmp / "other")],
                       lambda r, e: len(list((e.tmp / "other").glob("*/dataset_info.json"))) == 3),
}


# ----- training -----

def lr_lambda(run: Run, step: int) -> float:
    return run.trainer.lr_scheduler.lr_lambdas[0](step)


def eval_logs(run: Run, key: str) -> list[float]:
    return [entry[key] for entry in run.state.log_history if key in entry]


EVERY_STEP = ["--eval-strategy", "steps", "--eval-steps", "1", "--save-strategy", "steps", "--save-steps", "1"]


def check_load_best_false(run, env):
    from safetensors.torch import load_file

    last = max(run.out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert int(last.name.split("-")[1]) == run.state.global_step
    saved, checkpoint = load_file(run.out / "model.safetensors"), load_file(last / "model.safetensors")
    assert all(torch.equal(saved[k], checkpoint[k]) for k in saved)
    assert not any(type(c).__name__ == "EarlyStoppingCallback" for c in run.trainer.callback_handler.callbacks)


def check_restore_callback_states(run, env, go):
    """The run stopped at step 2 with one evaluation without improvement; patience 3 ends it at step 4 when the
    counter is restored (as the uninterrupted run would), at step 5 when it starts again from 0."""
    import shutil

    flags = ["--resume", "--max-steps", "8", *EVERY_STEP, "--patience", "3", "--min-delta", "1e9"]
    for restore, stop in (("true", 4), ("false", 5)):
        out = env.tmp / f"copy-{restore}"
        shutil.copytree(run.out, out)
        resumed = go(*flags, "--restore-callback-states-from-checkpoint", restore, out=out)
        assert resumed.state.global_step == stop, (restore, resumed.state.global_step)


def check_resume(run, env, go):
    resumed = go("--resume", "--max-steps", "4", *EVERY_STEP, out=run.out)
    assert resumed.state.global_step == 4 and "--resume: continuing from " in resumed.log
    assert "checkpoint-2" in resumed.log.split("--resume: continuing from ")[1].splitlines()[0]


TRAINING_CASES = {
    "output_dir": ([], lambda r, e: (r.out / "model.safetensors").is_file() and (r.out / "report.md").is_file()),
    "per_device_train_batch_size": (["--batch-size", "8"], lambda r, e: r.state.global_step == math.ceil(
        sizes(r)["train"] / 8)),
    "num_train_epochs": (["--epochs", "2"], lambda r, e: (r.state.epoch, r.state.global_step) == (
        2, 2 * math.ceil(sizes(r)["train"] / 16))),
    "learning_rate": (["--lr", "3e-4"], lambda r, e: (r.group_lrs(r.trainer.model.encoder),
                                                       r.group_lrs(r.trainer.model.heads)) == ({3e-4}, {1e-3})),
    "lr_scheduler_type": (["--scheduler", "cosine"],
                          lambda r, e: "cosine" in r.trainer.lr_scheduler.lr_lambdas[0].func.__name__),
    "warmup_steps": (["--warmup-steps", "2", "--epochs", "2"],
                     lambda r, e: (lr_lambda(r, 0), lr_lambda(r, 1), lr_lambda(r, 2)) == (0.0, 0.5, 1.0)),
    "weight_decay": (["--weight-decay", "0.3"],
                     lambda r, e: {g["weight_decay"] for g in r.trainer.optimizer.param_groups} == {0.0, 0.3}),
    "logging_steps": (["--logging-steps", "2"], lambda r, e: [h["step"] for h in r.state.log_history
                                                               if "loss" in h] == [2, 4]),
    "eval_strategy": (["--eval-strategy", "no", "--load-best-model-at-end", "false"],
                      lambda r, e: eval_logs(r, "eval_loss") == []),
    "per_device_eval_batch_size": (["--per-device-eval-batch-size", "2"], lambda r, e: len(
        r.trainer.get_eval_dataloader()) == math.ceil(len(r.trainer.eval_dataset) / 2)),
    "save_strategy": (["--save-strategy", "no", "--load-best-model-at-end", "false"],
                      lambda r, e: list(r.out.glob("checkpoint-*")) == []),
    "save_total_limit": ([*EVERY_STEP, "--save-total-limit", "1", "--load-best-model-at-end", "false"],
                         lambda r, e: len(list(r.out.glob("checkpoint-*"))) == 1 < r.state.global_step),
    "load_best_model_at_end": ([*EVERY_STEP, "--load-best-model-at-end", "false"], check_load_best_false),
    "metric_for_best_model": ([*EVERY_STEP, "--metric-for-best-model", "sentiment_accuracy"],
                              lambda r, e: r.state.best_metric == max(eval_logs(r, "eval_sentiment_accuracy"))),
    "greater_is_better": ([*EVERY_STEP, "--metric-for-best-model", "loss", "--greater-is-better", "false"],
                          lambda r, e: r.state.best_metric == min(eval_logs(r, "eval_loss"))),
    "train_sampling_strategy": (["--train-sampling-strategy", "sequential"],
                                lambda r, e: list(r.trainer._get_train_sampler()) == list(range(sizes(r)["train"]))),
    "backbone_lr": (["--backbone-lr", "2e-5"], lambda r, e: r.group_lrs(r.trainer.model.encoder) == {2e-5}),
    "head_lr": (["--head-lr", "5e-3"], lambda r, e: r.group_lrs(r.trainer.model.heads) == {5e-3}),
    "layer_lr_decay": (["--backbone-lr", "1e-4", "--layer-lr-decay", "0.5"], lambda r, e: (
        r.group_lrs(r.trainer.model.encoder.encoder.layer[1]), r.group_lrs(r.trainer.model.encoder.encoder.layer[0]),
        r.group_lrs(r.trainer.model.encoder.embeddings)) == ({1e-4}, {5e-5}, {2.5e-5})),
    "freeze_strategy": (["--freeze-strategy", "none"], lambda r, e: (  # the default leaves this encoder frozen
        changed(r, e, "embeddings."), changed(r, e, "encoder.layer.0."), changed(r, e, "encoder.layer.1.")) == (
        True, True, True)),
    "freeze_layers": (["--freeze-strategy", "partial", "--freeze-layers", "1"], lambda r, e: (
        changed(r, e, "embeddings."), changed(r, e, "encoder.layer.0."), changed(r, e, "encoder.layer.1.")) == (
        False, False, True)),
    "unfreeze_schedule": (["--freeze-strategy", "progressive", "--unfreeze-schedule", "1:1", "--epochs", "2"],
                          lambda r, e: (changed(r, e, "encoder.layer.0."), changed(r, e, "encoder.layer.1.")) == (
                              False, True)),
    "patience": ([*EVERY_STEP, "--patience", "1", "--min-delta", "1e9"], lambda r, e: r.state.global_step == 2),
    "min_delta": ([*EVERY_STEP, "--patience", "2", "--min-delta", "1e9"], lambda r, e: r.state.global_step == 3),
    "cache_embeddings": (lambda e: ["--freeze-strategy", "full", "--cache-embeddings", "on",
                                    "--embedding-cache-dir", str(e.tmp / "emb")], lambda r, e: (
        "embedding cache: built train" in r.log and r.trainer.train_dataset.column_names[:3] == ["cls", "mean", "max"]
        and not changed(r, e, ""))),
    "embedding_cache_dir": (lambda e: ["--freeze-strategy", "full", "--embedding-cache-dir", str(e.tmp / "emb")],
                            lambda r, e: len(list((e.tmp / "emb").glob("*/dataset_info.json"))) == 3),
    "resume": (["--max-steps", "2", *EVERY_STEP], "resume"),
    "restore_callback_states_from_checkpoint": (["--max-steps", "2", *EVERY_STEP, "--patience", "3", "--min-delta",
                                                 "1e9"], "restore_callback_states"),
}

def logged_weights(run: Run, task: str) -> list[float]:
    return [entry[f"weight_{task}"] for entry in run.state.log_history if f"weight_{task}" in entry]


def check_dwa(run, env, temperature=2.0):
    weights = logged_weights(run, "sentiment")
    assert weights[0] == 1.0 and len(set(weights)) > 1  # equal at first, then moved by the loss ratios
    assert (run.out / "plots" / "task_weights.png").is_file()
    callback = balancing_in(run)
    assert callback.strategy == "dwa" and callback.temperature == temperature
    assert callback.balance == pytest.approx(dwa_weights(callback.means, temperature))  # the run's own loss means
    assert callback.balance != pytest.approx(dwa_weights(callback.means, 1.0))  # and the temperature matters here


def balancing_in(run: Run):
    return next(c for c in run.trainer.callback_handler.callbacks if type(c).__name__ == "TaskBalancingCallback")


def check_window(run, env, window=3):
    """The last inverse-variance weights are those of the last `window` losses logged before that update."""
    callback = balancing_in(run)
    logged = [e for e in run.state.log_history if e.get("step", 0) <= callback.last_update]
    history = {name: [e[f"loss_{name}"] for e in logged if f"loss_{name}" in e] for name in callback.balance}
    assert callback.window == window and callback.balance == pytest.approx(inverse_variance_weights(history, window))
    assert callback.balance != pytest.approx(inverse_variance_weights(history, None))  # the window matters here


BALANCING_CASES = {
    "loss_weighting": (["--loss-weighting", "dwa", "--loss-weighting-interval", "2", "--epochs", "3"], check_dwa),
    "loss_weighting_interval": (["--loss-weighting", "inverse_variance", "--loss-weighting-interval", "3",
                                 "--epochs", "2"], lambda r, e: [k for k, (a, b) in enumerate(zip(
                                     logged_weights(r, "question"), logged_weights(r, "question")[1:])) if a != b][
                                     :1] == [2]),  # first change after step 3 (logged at step 4)
    "loss_weighting_window": (["--loss-weighting", "inverse_variance", "--loss-weighting-interval", "2",
                               "--loss-weighting-window", "3", "--epochs", "2"], check_window),
    "dwa_temperature": (["--loss-weighting", "dwa", "--loss-weighting-interval", "2", "--dwa-temperature", "0.5",
                         "--epochs", "3"], lambda r, e: check_dwa(r, e, 0.5)),
    "task_weight_schedule": (["--task-weight-schedule", "confidence=0:0,1:1", "--epochs", "2"], lambda r, e: (
        logged_weights(r, "confidence")[0] == 0.0 and logged_weights(r, "confidence")[-1] > 0.7
        and set(logged_weights(r, "sentiment")) == {1.0})),
    "dropout_schedule": (["--dropout-schedule", "0:0.1,1:0.4", "--epochs", "2"], lambda r, e: pytest.approx(
        0.4 * 7 / 8 + 0.1 / 8) == r.trainer.model.heads["sentiment"].dropout.p),  # set before the last step
}

CASES = {**MODEL_CASES, **DATA_CASES, **TRAINING_CASES, **BALANCING_CASES}
TWO_RUN_CHECKS = {"dataset_config": check_dataset_config, "resume": check_resume,
                  "restore_callback_states": check_restore_callback_states}


def test_every_flag_has_a_case():
    flags = [field.name for _, cls, only_new in flag_groups() for field in documented_fields(cls, only_new)]
    missing = [name for name in flags if name not in CASES]
    assert not missing, f"flags without an end-to-end case in tests/test_flags.py: {missing}"
    assert not set(CASES) - set(flags), f"cases for flags that no longer exist: {sorted(set(CASES) - set(flags))}"


@pytest.mark.parametrize("name", list(CASES))
def test_flag_has_its_effect(name, run, env):
    flags, check, *rest = CASES[name]
    flags = flags(env) if callable(flags) else flags
    result = run(*flags, data=rest[0] if rest else True)
    if isinstance(check, str):
        result_ok = TWO_RUN_CHECKS[check](result, env, run)
    else:
        result_ok = check(result, env)
    assert result_ok is not False and result_ok in (None, True), f"--{name.replace('_', '-')} had no effect"
