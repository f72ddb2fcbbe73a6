"""Dynamic padding plus per-task label stacking with the contract's dtypes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from modeling.task_schema import IGNORE_INDEX, label_key, label_width

# What a tokenizer produces that an encoder reads.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# What the heads read instead when the frozen encoder's output comes from the embedding cache, and the cached
# columns each pooling is made of.
POOLED_INPUT = "pooled_output"
POOLED_COLUMNS = {"cls": ("cls",), "mean": ("mean",), "max": ("max",), "mean_max": ("mean", "max")}


class MultiTaskCollator:
    """Pads `input_ids` / `attention_mask` / `token_type_ids` to the longest row of the batch and stacks labels.

    Labels: multiclass int64 (B,), binary float32 (B,), multilabel float32 (B, L), regression float32 (B, K);
    a row without a task's key gets the missing sentinel (-100, or NaN for regression). Every other column
    (`text`, ids, ...) is dropped. `tasks` are task dicts (`modeling.task_schema`), as stored in the model config.
    """

    def __init__(self, tokenizer, tasks: Sequence[dict], pad_to_multiple_of: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.tasks = [(t["name"], t["type"], label_width(t)) for t in tasks]
        self.pad_to_multiple_of = pad_to_multiple_of
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.pad_type_id = getattr(tokenizer, "pad_token_type_id", 0) or 0
        self.left = getattr(tokenizer, "padding_side", "right") == "left"

    def _pad(self, rows: list[Sequence[int]], value: int, length: int) -> torch.Tensor:
        out = torch.full((len(rows), length), value, dtype=torch.long)
        for i, row in enumerate(rows):
            row = torch.as_tensor(row, dtype=torch.long)
            if self.left:
                out[i, length - len(row):] = row
            else:
                out[i, : len(row)] = row
        return out

    def _labels(self, features: list[dict], name: str, task_type: str, width: int) -> torch.Tensor | None:
        key = label_key(name)
        if not any(key in f for f in features):
            return None
        if task_type == "multiclass":
            values = [f.get(key, IGNORE_INDEX) for f in features]
            return torch.as_tensor(np.asarray(values, dtype=np.int64))
        if task_type == "binary":
            values = [f.get(key, IGNORE_INDEX) for f in features]
            return torch.as_tensor(np.asarray(values, dtype=np.float32))
        fill = np.nan if task_type == "regression" else IGNORE_INDEX
        rows = [f[key] if f.get(key) is not None else [fill] * width for f in features]
        return torch.as_tensor(np.asarray(rows, dtype=np.float32).reshape(len(features), width))

    def inputs(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """The encoder inputs, padded to the batch's longest row."""
        if "input_ids" not in features[0]:
            raise ValueError(f"MultiTaskCollator: features need 'input_ids' (got keys {sorted(features[0])}); "
                             "pass the tokenized dataset")
        ids = [f["input_ids"] for f in features]
        length = max(len(r) for r in ids)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {"input_ids": self._pad(ids, self.pad_id, length)}
        masks = [f["attention_mask"] if f.get("attention_mask") is not None else [1] * len(f["input_ids"])
                 for f in features]
        batch["attention_mask"] = self._pad(masks, 0, length)
        if "token_type_ids" in features[0]:
            batch["token_type_ids"] = self._pad([f["token_type_ids"] for f in features], self.pad_type_id, length)
        return batch

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError(f"{type(self).__name__}: empty batch")
        batch = self.inputs(features)
        for name, task_type, width in self.tasks:
            labels = self._labels(features, name, task_type, width)
            if labels is not None:
                batch[label_key(name)] = labels
        return batch


class EmbeddingCollator(MultiTaskCollator):
    """For the frozen-encoder embedding cache: rows carry pooled vectors (`cls`, `mean`, `max`) instead of token
    ids; the batch holds `pooled_output` (B, D) for the model's pooling (`mean_max`: mean and max side by side)."""

    def __init__(self, tasks: Sequence[dict], pooling: str) -> None:
        self.tasks = [(t["name"], t["type"], label_width(t)) for t in tasks]
        self.columns = POOLED_COLUMNS[pooling]

    def inputs(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        parts = [np.asarray([f[column] for f in features], dtype=np.float32) for column in self.columns]
        return {POOLED_INPUT: torch.from_numpy(np.concatenate(parts, axis=1))}
