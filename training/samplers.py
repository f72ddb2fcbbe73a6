"""Training samplers whose order depends only on (seed, epoch): a resumed run sees the batches of the run it continues.

The stock `LengthGroupedSampler` shuffles with the global torch RNG, which `--resume` restores to the checkpoint's
step, not to the start of the epoch, so a run resumed mid-epoch draws another order; a `WeightedRandomSampler` with
a generator seeded once replays epoch 0's draws in whatever epoch a run resumes into. These samplers reseed their
own generator with `seed + epoch` every time they are iterated. The Trainer (through accelerate's `set_epoch`)
tells them the epoch; every process draws the same sequence, and accelerate hands each process its own batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

# Mega-batches of this many batches are sorted by length (as in transformers' LengthGroupedSampler).
MEGABATCH_FACTOR = 50


class EpochSeeded(Sampler[int]):
    """Base: a generator reseeded with `seed + epoch` at every `__iter__`; `set_epoch` is called by the Trainer."""

    def __init__(self, num_samples: int, seed: int):
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + self.epoch)

    def __len__(self) -> int:
        return self.num_samples


class SeededLengthGroupedSampler(EpochSeeded):
    """Shuffled indices grouped so that each batch holds texts of similar length (less padding, faster steps).

    A random permutation is cut into mega-batches of `MEGABATCH_FACTOR * batch_size` rows, each sorted by length
    (longest first), and the mega-batch holding the longest row goes first so an out-of-memory error shows at once.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int):
        super().__init__(len(lengths), seed)
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.num_samples, generator=self.generator()).numpy()
        size = MEGABATCH_FACTOR * self.batch_size
        megabatches = [sorted(order[i:i + size], key=lambda j: -self.lengths[j]) for i in range(0, len(order), size)]
        longest = int(np.argmax([self.lengths[mb[0]] for mb in megabatches]))
        megabatches[0], megabatches[longest] = megabatches[longest], megabatches[0]
        return iter(int(i) for mb in megabatches for i in mb)


class SeededWeightedSampler(EpochSeeded):
    """Draws `num_samples` indices with replacement, with probability proportional to `weights`."""

    def __init__(self, weights: Sequence[float], seed: int):
        super().__init__(len(weights), seed)
        self.weights = torch.as_tensor(np.asarray(weights, dtype=np.float64))

    def __iter__(self) -> Iterator[int]:
        draws = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=self.generator())
        return iter(draws.tolist())
