"""On-the-fly text augmentation for the training split: word dropout and random word swap.

Randomness comes from `numpy` generators keyed on (seed, epoch, text, how often that text was served), so a run
is reproducible for a seed, every epoch (and every call) sees a new variant, and evaluation data is never touched
because only the training split gets the transform.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np


class WordAugmenter:
    """Word dropout (drop ~`dropout_rate` of the words, never all) and a random swap of two words."""

    def __init__(self, dropout_prob: float = 0.0, dropout_rate: float = 0.1, swap_prob: float = 0.0,
                 seed: int = 42) -> None:
        for name, value in (("dropout_prob", dropout_prob), ("dropout_rate", dropout_rate), ("swap_prob", swap_prob)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"WordAugmenter: {name} must be in [0, 1], got {value}")
        self.dropout_prob = dropout_prob
        self.dropout_rate = dropout_rate
        self.swap_prob = swap_prob
        self.seed = seed
        self.epoch = 0
        self._served: dict[int, int] = defaultdict(int)

    @property
    def enabled(self) -> bool:
        return self.dropout_prob > 0 or self.swap_prob > 0

    def set_epoch(self, epoch: int) -> None:
        """Start a new epoch (optional: variants already differ between calls); resets the per-text counters."""
        self.epoch = int(epoch)
        self._served.clear()

    def _rng(self, text: str) -> np.random.Generator:
        key = zlib.crc32(text.encode("utf-8"))
        count = self._served[key]
        self._served[key] = count + 1
        return np.random.default_rng([self.seed, self.epoch, key, count])

    def augment(self, text: str) -> str:
        """One augmented variant of `text` (unchanged when the draws say so or it has a single word)."""
        rng = self._rng(text)
        words = text.split()
        if len(words) < 2:
            return text
        changed = False
        if rng.random() < self.dropout_prob:
            n_drop = min(len(words) - 1, max(1, int(round(self.dropout_rate * len(words)))))
            drop = set(rng.choice(len(words), size=n_drop, replace=False).tolist())
            words = [w for i, w in enumerate(words) if i not in drop]
            changed = True
        if len(words) > 1 and rng.random() < self.swap_prob:
            i, j = rng.choice(len(words), size=2, replace=False)
            words[i], words[j] = words[j], words[i]
            changed = True
        return " ".join(words) if changed else text

    def __call__(self, texts: Sequence[str]) -> list[str]:
        return [self.augment(t) for t in texts]


def make_train_transform(tokenizer, label_keys: Sequence[str], augmenter: WordAugmenter, max_length: int,
                         text_column: str = "text") -> Callable[[dict], dict]:
    """A `Dataset.set_transform` function: augment the batch's texts, tokenize them, pass the labels through."""

    def transform(batch: dict) -> dict:
        if text_column not in batch:
            raise ValueError(f"the augmented training split needs its {text_column!r} column; run the Trainer with "
                             "remove_unused_columns=False (MultiTaskCollator drops non-model columns itself)")
        encoded = tokenizer(augmenter(batch[text_column]), truncation=True, max_length=max_length)
        out = {k: v for k, v in encoded.items()}
        for key in label_keys:
            out[key] = batch[key]
        return out

    return transform
