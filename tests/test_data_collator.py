"""MultiTaskCollator: dynamic padding, contract dtypes and shapes, missing sentinels, extra columns dropped."""

from __future__ import annotations

import math

import pytest
import torch

from data.collator import MultiTaskCollator
from modeling.task_schema import normalize_tasks

TASKS = normalize_tasks([{"name": "cls", "type": "multiclass", "labels": ["a", "b"]},
                         {"name": "ml", "type": "multilabel", "labels": ["x", "y", "z"]},
                         {"name": "bin", "type": "binary"},
                         {"name": "reg", "type": "regression", "labels": ["V", "A"]}])


def _features(tokenizer):
    texts = ["short", "a somewhat longer sentence here"]
    enc = tokenizer(texts, truncation=True, max_length=32)
    return [
        {"input_ids": enc["input_ids"][0], "attention_mask": enc["attention_mask"][0],
         "token_type_ids": enc["token_type_ids"][0], "text": texts[0], "labels_cls": 1,
         "labels_ml": [1.0, 0.0, 1.0], "labels_bin": 0.0, "labels_reg": [1.5, float("nan")]},
        {"input_ids": enc["input_ids"][1], "attention_mask": enc["attention_mask"][1],
         "token_type_ids": enc["token_type_ids"][1], "text": texts[1], "labels_cls": -100,
         "labels_ml": [-100.0] * 3, "labels_bin": 1.0, "labels_reg": [2.0, 3.0]},
    ], enc


def test_pads_to_longest_and_stacks_labels_with_contract_dtypes(tokenizer):
    features, enc = _features(tokenizer)
    batch = MultiTaskCollator(tokenizer, TASKS)(features)
    longest = max(len(i) for i in enc["input_ids"])
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels_cls", "labels_ml", "labels_bin",
                          "labels_reg"}
    assert batch["input_ids"].shape == (2, longest) and batch["input_ids"].dtype == torch.long
    short = len(enc["input_ids"][0])
    assert batch["input_ids"][0, short:].eq(tokenizer.pad_token_id).all()
    assert batch["attention_mask"][0].tolist() == [1] * short + [0] * (longest - short)
    assert batch["labels_cls"].dtype == torch.int64 and batch["labels_cls"].tolist() == [1, -100]
    assert batch["labels_ml"].dtype == torch.float32 and batch["labels_ml"].shape == (2, 3)
    assert batch["labels_bin"].dtype == torch.float32 and batch["labels_bin"].tolist() == [0.0, 1.0]
    assert batch["labels_reg"].shape == (2, 2) and math.isnan(batch["labels_reg"][0, 1].item())


def test_missing_keys_get_sentinels_and_config_dicts_work(tokenizer):
    features, _ = _features(tokenizer)
    del features[1]["labels_reg"], features[1]["labels_ml"], features[0]["labels_bin"]
    collator = MultiTaskCollator(tokenizer, TASKS, pad_to_multiple_of=8)
    batch = collator(features)
    assert batch["input_ids"].shape[1] % 8 == 0
    assert torch.isnan(batch["labels_reg"][1]).all() and batch["labels_ml"][1].tolist() == [-100.0] * 3
    assert batch["labels_bin"].tolist() == [-100.0, 1.0]
    without = collator([{k: v for k, v in f.items() if k != "labels_cls"} for f in features])
    assert "labels_cls" not in without


def test_left_padding_and_errors(tokenizer):
    features, enc = _features(tokenizer)
    tokenizer.padding_side = "left"
    try:
        batch = MultiTaskCollator(tokenizer, TASKS)(features)
    finally:
        tokenizer.padding_side = "right"
    short = len(enc["input_ids"][0])
    assert batch["input_ids"][0, -short:].tolist() == enc["input_ids"][0]
    with pytest.raises(ValueError, match="features need 'input_ids'"):
        MultiTaskCollator(tokenizer, TASKS)([{"text": "raw"}])
