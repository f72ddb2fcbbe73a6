"""training.samplers: orders depend on (seed, epoch) only, so a resumed epoch replays the same batches."""

from __future__ import annotations

import numpy as np
import torch

from training.samplers import MEGABATCH_FACTOR, SeededLengthGroupedSampler, SeededWeightedSampler


def test_length_grouped_order_is_a_function_of_seed_and_epoch():
    lengths = np.random.default_rng(0).integers(3, 60, size=500)
    sampler = SeededLengthGroupedSampler(lengths, batch_size=4, seed=7)
    first = list(sampler)
    torch.manual_seed(123)  # the global RNG plays no part
    assert list(sampler) == first and sorted(first) == list(range(500))
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and sorted(second) == list(range(500))
    sampler.set_epoch(0)
    assert list(SeededLengthGroupedSampler(lengths, 4, seed=7)) == first
    assert list(SeededLengthGroupedSampler(lengths, 4, seed=8)) != first


def test_length_grouped_batches_are_sorted_within_megabatches():
    lengths = np.random.default_rng(1).integers(3, 60, size=1000)
    order = list(SeededLengthGroupedSampler(lengths, batch_size=4, seed=0))
    size = MEGABATCH_FACTOR * 4
    for start in range(0, 1000, size):
        chunk = lengths[order[start:start + size]]
        assert (np.diff(chunk) <= 0).all()
    assert lengths[order[0]] == lengths.max()  # the longest batch first: memory errors show at once


def test_weighted_draws_follow_the_weights_and_the_epoch():
    weights = np.array([1.0, 1.0, 8.0])
    sampler = SeededWeightedSampler(weights, seed=3)
    sampler.num_samples = 10_000
    draws = np.bincount(list(sampler), minlength=3) / 10_000
    np.testing.assert_allclose(draws, weights / weights.sum(), atol=0.02)
    first = list(sampler)
    sampler.set_epoch(2)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first
