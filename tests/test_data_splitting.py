"""Seeded, stratified, duplicate-aware splitting."""

from __future__ import annotations

import numpy as np

from data.splitting import split_indices


def test_fractions_stratification_and_seed():
    texts = [f"t{i}" for i in range(1000)]
    strata = np.array([0] * 800 + [1] * 200)
    parts = split_indices(texts, strata, {"validation": 0.1, "test": 0.2}, seed=1)
    assert [len(parts[k]) for k in ("train", "validation", "test")] == [700, 100, 200]
    assert np.sort(np.concatenate(list(parts.values()))).tolist() == list(range(1000))
    assert (strata[parts["test"]] == 1).sum() == 40 and (strata[parts["validation"]] == 1).sum() == 20
    again = split_indices(texts, strata, {"validation": 0.1, "test": 0.2}, seed=1)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    other = split_indices(texts, strata, {"validation": 0.1, "test": 0.2}, seed=2)
    assert not np.array_equal(parts["test"], other["test"])


def test_duplicates_stay_together_and_zero_fraction_skips():
    texts = ["same"] * 50 + [f"u{i}" for i in range(50)]
    parts = split_indices(texts, None, {"validation": 0.5, "test": 0.0}, seed=0)
    assert set(parts) == {"train", "validation"}
    homes = [k for k, idx in parts.items() if (np.asarray(idx) < 50).any()]
    assert len(homes) == 1
