"""On-the-fly text augmentation for the training split: word dropout and random word swap.

Randomness comes from a `numpy` generator keyed on (seed, epoch, row index) and nothing else: a run is reproducible
for a seed, every epoch sees a new variant of each row, a run resumed mid-epoch augments exactly as the run it
continues, and evaluation data is never touched because only the training split gets the transform. The Trainer
sets the epoch (`training.callbacks.AugmentationEpochCallback`).
"""

from __future__ import annotations

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

    @property
    def enabled(self) -> bool:
        return self.dropout_prob > 0 or self.swap_prob > 0

    def set_epoch(self, epoch: int) -> None:
        """Start epoch `epoch`: every row gets a new variant, the same one however often the epoch is replayed."""
        self.epoch = int(epoch)

    def augment(self, text: str, row: int = 0) -> str:
        """The variant of `text` (training row `row`) for this epoch; unchanged when the draws say so or it has a
        single word."""
        rng = np.random.default_rng([self.seed, self.epoch, int(row)])
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

    def __call__(self, texts: Sequence[str], rows: Sequence[int]) -> list[str]:
        return [self.augment(text, row) for text, row in zip(texts, rows)]


ROW_COLUMN = "row"


def make_train_transform(tokenizer, label_keys: Sequence[str], augmenter: WordAugmenter, max_length: int,
                         text_column: str = "text") -> Callable[[dict], dict]:
    """A `Dataset.set_transform` function: augment the batch's texts, tokenize them, pass the labels through.

    The split must carry its text and a `row` column (the row's index), which keys the augmentation.
    """

    def transform(batch: dict) -> dict:
        if text_column not in batch or ROW_COLUMN not in batch:
            raise ValueError(f"the augmented training split needs its {text_column!r} and {ROW_COLUMN!r} columns; "
                             "run the Trainer with remove_unused_columns=False (MultiTaskCollator drops non-model "
                             "columns itself)")
        texts = augmenter(batch[text_column], batch[ROW_COLUMN])
        encoded = tokenizer(texts, truncation=True, max_length=max_length)
        out = {k: v for k, v in encoded.items()}
        for key in label_keys:
            out[key] = batch[key]
        return out

    return transform
