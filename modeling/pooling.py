"""Mask-aware pooling of token states into one sentence vector: a name -> module table.

Every module maps `hidden_states (B, T, H)` and `attention_mask (B, T)` (1 = token, 0 = padding) to `(B, D)`,
where `D = output_dim(H)`. Padding never contributes to `mean`, `max` or `attention`. No module writes in place
into the encoder output, and reductions run in float32, so the modules are safe under autograd and fp16.
`cls` takes the first position, which assumes right padding (the default of BERT-style tokenizers).
"""

from __future__ import annotations

import torch
from torch import nn


def _float_mask(attention_mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return attention_mask.to(dtype=torch.float32, device=like.device).unsqueeze(-1)  # (B, T, 1)


class Pooling(nn.Module):
    """Base of the pooling modules: `(hidden_states (B, T, H), attention_mask (B, T)) -> (B, D)`."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size

    def output_dim(self) -> int:
        return self.hidden_size


class ClsPooling(Pooling):
    """The first token's state (`[CLS]` / `<s>`)."""

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return hidden_states[:, 0]  # (B, H)


class MeanPooling(Pooling):
    """Average of the real tokens' states (what sentence-transformers' MiniLM was trained with)."""

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = _float_mask(attention_mask, hidden_states)  # (B, T, 1)
        summed = (hidden_states.float() * mask).sum(dim=1)  # (B, H)
        counts = mask.sum(dim=1).clamp_min(1.0)  # (B, 1)
        return (summed / counts).to(hidden_states.dtype)  # (B, H)


class MaxPooling(Pooling):
    """Element-wise maximum over the real tokens (a row without any token pools to zeros)."""

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        keep = attention_mask.to(device=hidden_states.device).bool().unsqueeze(-1)  # (B, T, 1)
        lowest = torch.finfo(torch.float32).min
        masked = hidden_states.float().masked_fill(~keep, lowest)  # (B, T, H), out of place
        pooled = masked.max(dim=1).values  # (B, H)
        has_token = keep.any(dim=1)  # (B, 1)
        return torch.where(has_token, pooled, torch.zeros_like(pooled)).to(hidden_states.dtype)  # (B, H)


class MeanMaxPooling(Pooling):
    """Concatenation of mean and max pooling: `D = 2H`."""

    def __init__(self, hidden_size: int):
        super().__init__(hidden_size)
        self.mean = MeanPooling(hidden_size)
        self.max = MaxPooling(hidden_size)

    def output_dim(self) -> int:
        return 2 * self.hidden_size

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.mean(hidden_states, attention_mask), self.max(hidden_states, attention_mask)], dim=-1)


class AttentionPooling(Pooling):
    """Learned attention over tokens: score = w2 . tanh(W1 h), masked softmax over real tokens, weighted sum."""

    def __init__(self, hidden_size: int):
        super().__init__(hidden_size)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.scorer = nn.Linear(hidden_size, 1, bias=False)  # a bias would cancel out in the softmax

    def output_dim(self) -> int:
        return self.hidden_size

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        scores = self.scorer(torch.tanh(self.dense(hidden_states))).squeeze(-1).float()  # (B, T)
        keep = attention_mask.to(device=scores.device).bool()  # (B, T)
        scores = scores.masked_fill(~keep, torch.finfo(torch.float32).min)  # (B, T), out of place
        weights = torch.softmax(scores, dim=-1) * keep  # (B, T); a row without tokens gets all-zero weights
        pooled = torch.bmm(weights.unsqueeze(1), hidden_states.float()).squeeze(1)  # (B, H)
        return pooled.to(hidden_states.dtype)


POOLING_CLASSES: dict[str, type[Pooling]] = {
    "cls": ClsPooling,
    "mean": MeanPooling,
    "max": MaxPooling,
    "mean_max": MeanMaxPooling,
    "attention": AttentionPooling,
}


def build_pooling(name: str, hidden_size: int) -> Pooling:
    """Instantiate the pooling module called `name` for encoder states of size `hidden_size`."""
    if name not in POOLING_CLASSES:
        raise ValueError(f"pooling: {name!r} is not supported; allowed: {list(POOLING_CLASSES)}")
    return POOLING_CLASSES[name](hidden_size)


__all__ = ["POOLING_CLASSES", "build_pooling", "Pooling", "ClsPooling", "MeanPooling", "MaxPooling", "MeanMaxPooling",
           "AttentionPooling"]
