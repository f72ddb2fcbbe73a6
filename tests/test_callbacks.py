"""Freezing strategies on BERT, DistilBERT and RoBERTa configs, and the refusals of impossible plans."""

from __future__ import annotations

import pytest
import torch
from conftest import TOY_TASKS, tiny_backbone_config

from modeling import MultiTaskConfig, MultiTaskModel
from training.callbacks import FreezingCallback, count_parameters, validate_freeze_plan


def build(kind: str) -> MultiTaskModel:
    config = MultiTaskConfig(encoder_config=tiny_backbone_config(kind).to_dict(), tasks=TOY_TASKS[:1],
                             head_hidden_dims=[16])
    return MultiTaskModel(config)


def trainable(module) -> set[bool]:
    return {p.requires_grad for p in module.parameters()}


def test_partial_freezes_exactly_embeddings_and_bottom_layers(backbone_kind):
    model = build(backbone_kind)
    FreezingCallback("partial", freeze_layers=1).apply(model, epoch=0)
    layers = model.get_encoder_layers()
    assert len(layers) == 2
    assert trainable(model.get_encoder_embeddings()) == {False}
    assert trainable(layers[0]) == {False}
    assert trainable(layers[1]) == {True}
    assert trainable(model.heads) == {True}
    frozen = {id(p) for p in model.parameters() if not p.requires_grad}
    expected = {id(p) for m in (model.get_encoder_embeddings(), layers[0]) for p in m.parameters()}
    assert frozen == expected


def test_full_freeze_runs_the_encoder_without_autograd_in_eval_mode():
    model = build("bert")
    FreezingCallback("full").apply(model, epoch=0)
    model.train()
    assert not model.encoder.training and model.heads.training
    assert trainable(model.encoder) == {False}
    ids = torch.tensor([[2, 10, 50, 3]])
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels_topic=torch.tensor([1]))
    out.loss.backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.heads.parameters())
    assert count_parameters(model)[0] == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_progressive_plan_follows_the_schedule():
    model = build("distilbert")
    callback = FreezingCallback("progressive", plan={1: 1, 3: "all"})
    callback.apply(model, epoch=0)
    assert trainable(model.encoder) == {False}
    callback.apply(model, epoch=2)
    layers = model.get_encoder_layers()
    assert trainable(layers[1]) == {True} and trainable(layers[0]) == {False}
    callback.apply(model, epoch=3)
    assert trainable(model.encoder) == {True} and not model.encoder_frozen


@pytest.mark.parametrize(
    "strategy, layers, plan, message",
    [
        ("partial", 9, {}, "--freeze-layers 9: the encoder has only 6 layers"),
        ("progressive", 0, {1: 2, 2: 8}, "epoch 2 unfreezes 8 layers but the encoder has only 6"),
    ],
)
def test_impossible_plans_are_refused(strategy, layers, plan, message):
    with pytest.raises(ValueError, match=message):
        validate_freeze_plan(strategy, layers, plan, num_layers=6)
