"""MultiTaskTrainer on tiny models: learning, uncertainty weights, freezing, sampling, early stopping, resuming."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TOY_TASKS, tiny_backbone_config, toy_rows
from datasets import Dataset
from transformers import TrainerCallback

from data.collator import MultiTaskCollator
from modeling import MultiTaskConfig, MultiTaskModel
from training.arguments import MultiTaskTrainingArguments
from training.recipe import build_trainer


def make_model(tasks=TOY_TASKS, kind="bert", **config) -> MultiTaskModel:
    torch.manual_seed(0)
    config = MultiTaskConfig(encoder_config=tiny_backbone_config(kind).to_dict(), tasks=tasks,
                             head_hidden_dims=[32], head_dropout=0.0, **config)
    return MultiTaskModel(config)


def make_args(tmp_path, **overrides) -> MultiTaskTrainingArguments:
    values = dict(output_dir=str(tmp_path / "run"), num_train_epochs=3, per_device_train_batch_size=16,
                  learning_rate=2e-3, warmup_steps=0, eval_strategy="no", save_strategy="no",
                  load_best_model_at_end=False, logging_steps=1, use_cpu=True, disable_tqdm=True, seed=0,
                  patience=None, dataloader_num_workers=0, freeze_strategy="none", head_lr=None,
                  train_sampling_strategy="random")
    values.update(overrides)
    return MultiTaskTrainingArguments(**values)


def make_trainer(tmp_path, tokenizer, model=None, rows=None, tasks=TOY_TASKS, evaluate_on_train=False, **overrides):
    model = model or make_model(tasks)
    train = Dataset.from_list(rows or toy_rows(96))
    keep = {"input_ids", "attention_mask", *(f"labels_{t['name']}" for t in tasks)}
    train = train.remove_columns([c for c in train.column_names if c not in keep])
    return build_trainer(model, make_args(tmp_path, **overrides), train, train if evaluate_on_train else None,
                         MultiTaskCollator(tokenizer, model.config.tasks))


@pytest.mark.parametrize("task", TOY_TASKS, ids=lambda t: t["type"])
def test_loss_decreases_for_each_task_type(tmp_path, tokenizer, task):
    trainer = make_trainer(tmp_path, tokenizer, tasks=[task], num_train_epochs=8, learning_rate=3e-3,
                           lr_scheduler_type="constant")
    trainer.train()
    losses = [log[f"loss_{task['name']}"] for log in trainer.state.log_history if f"loss_{task['name']}" in log]
    assert len(losses) == 48
    assert np.mean(losses[-6:]) < 0.8 * np.mean(losses[:6])


def test_uncertainty_log_variances_train_and_weights_are_logged(tmp_path, tokenizer):
    model = make_model(loss_weighting="uncertainty")
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n.startswith("uncertainty")}
    assert before, "uncertainty weighting registered no parameters"
    trainer = make_trainer(tmp_path, tokenizer, model=model, num_train_epochs=1)
    trainer.train()
    after = dict(model.named_parameters())
    assert all(not torch.equal(before[n], after[n]) for n in before)
    logged = trainer.state.log_history[0]
    assert {"loss_topic", "loss_flags", "loss_spam", "loss_score", "weight_topic", "weight_score"} <= set(logged)


class Snapshots(TrainerCallback):
    """Copies of the bottom and top encoder layer at the end of every epoch."""

    def __init__(self):
        self.bottom, self.top = [], []

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        layers = model.get_encoder_layers()
        self.bottom.append([p.detach().clone() for p in layers[0].parameters()])
        self.top.append([p.detach().clone() for p in layers[-1].parameters()])


def _changed(a, b) -> bool:
    return any(not torch.equal(x, y) for x, y in zip(a, b))


def test_progressive_unfreezing_trains_layers_only_after_their_epoch(tmp_path, tokenizer):
    model = make_model()
    start_bottom = [p.detach().clone() for p in model.get_encoder_layers()[0].parameters()]
    start_top = [p.detach().clone() for p in model.get_encoder_layers()[-1].parameters()]
    trainer = make_trainer(tmp_path, tokenizer, model=model, freeze_strategy="progressive",
                           unfreeze_schedule="1:1,2:all", num_train_epochs=3, weight_decay=0.1)
    snapshots = Snapshots()
    trainer.add_callback(snapshots)
    trainer.train()
    assert not _changed(start_top, snapshots.top[0])  # epoch 0: heads only
    assert _changed(snapshots.top[0], snapshots.top[1])  # epoch 1: the top layer trains
    assert not _changed(start_bottom, snapshots.bottom[1])  # ... the bottom one does not, even with weight decay
    assert _changed(snapshots.bottom[1], snapshots.bottom[2])  # epoch 2: everything trains


def test_optimizer_groups_carry_separate_learning_rates(tmp_path, tokenizer):
    trainer = make_trainer(tmp_path, tokenizer, backbone_lr=1e-4, head_lr=1e-2, layer_lr_decay=0.5,
                           weight_decay=0.05)
    optimizer = trainer.create_optimizer()
    model = trainer.model
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    decay_of = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    layers = model.get_encoder_layers()
    assert lr_of[id(next(layers[-1].parameters()))] == pytest.approx(1e-4)
    assert lr_of[id(next(layers[0].parameters()))] == pytest.approx(5e-5)
    assert lr_of[id(next(model.get_encoder_embeddings().parameters()))] == pytest.approx(2.5e-5)
    head_params = dict(model.heads.named_parameters())
    assert all(lr_of[id(p)] == pytest.approx(1e-2) for p in head_params.values())
    assert {decay_of[id(p)] for n, p in head_params.items() if n.endswith("bias")} == {0.0}
    assert len(lr_of) == sum(1 for _ in model.parameters())  # every parameter, frozen or not


def test_weighted_sampler_draws_the_minority_class_more_often(tmp_path, tokenizer):
    rows = toy_rows(200)
    labels = np.array([0 if i < 180 else 1 for i in range(200)])
    for row, label in zip(rows, labels):
        row["labels_topic"] = int(label)
    weights = np.where(labels == 1, 180 / 20, 1.0)
    trainer = make_trainer(tmp_path, tokenizer, rows=rows)
    trainer.sample_weights = weights
    drawn = labels[list(trainer._get_train_sampler())]
    assert 0.35 < drawn.mean() < 0.65  # 10% of the rows, about half of the draws


def test_early_stopping_stops(tmp_path, tokenizer):
    rows = toy_rows(32)
    trainer = make_trainer(tmp_path, tokenizer, rows=rows, num_train_epochs=10, eval_strategy="epoch",
                           save_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="eval_loss",
                           greater_is_better=False, patience=1, min_delta=1e9, evaluate_on_train=True)
    trainer.train()
    assert trainer.state.epoch == pytest.approx(2.0)


def test_training_resumes_from_a_checkpoint(tmp_path, tokenizer):
    first = make_trainer(tmp_path, tokenizer, num_train_epochs=1, save_strategy="epoch")
    first.train()
    checkpoint = tmp_path / "run" / f"checkpoint-{first.state.global_step}"
    assert (checkpoint / "trainer_state.json").is_file()
    second = make_trainer(tmp_path, tokenizer, num_train_epochs=2, save_strategy="epoch")
    second.train(resume_from_checkpoint=str(checkpoint))
    assert second.state.global_step == 2 * first.state.global_step
    assert second.state.log_history[0]["step"] == 1  # the history of the first run came back with the checkpoint


HOST_READS = ("item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__")


@pytest.mark.parametrize("weighting", ["fixed", "uncertainty"])
def test_a_training_step_reads_nothing_back_to_the_host(tmp_path, tokenizer, monkeypatch, weighting):
    """compute_loss (forward, task losses, label counts, the loss meter) keeps everything on the device: on a GPU
    each host read is a synchronisation. Values are read once per logging step, in `log`. Reads made by the
    encoder itself (transformers' attention-mask helpers) are not ours to remove and are left out."""
    import sys

    from conftest import REPO_ROOT

    ours = tuple(str(REPO_ROOT / package) for package in ("modeling", "training", "data"))
    rows = toy_rows(16)
    for row in rows[::2]:
        row["labels_score"] = [float("nan")]  # partial labels: the presence masks are exercised too
    trainer = make_trainer(tmp_path, tokenizer, model=make_model(loss_weighting=weighting), rows=rows)
    batch = next(iter(trainer.get_train_dataloader()))
    reads = []
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def record(self, *args, _name=name, _original=original, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(ours):
                reads.append(f"{_name} in {caller}:{sys._getframe(1).f_lineno}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, record)
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    monkeypatch.undo()
    assert reads == [], f"host reads in a training step: {reads}"
    assert trainer._train_meter.means("loss_")  # the meter did record (its values are read at log time)
