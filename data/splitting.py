"""Seeded train / validation / test splitting of one table, stratified and duplicate-aware."""

from __future__ import annotations

import numpy as np
import pandas as pd


def split_indices(texts: list[str] | np.ndarray, strata: np.ndarray | None, fractions: dict[str, float],
                  seed: int) -> dict[str, np.ndarray]:
    """Row indices per split: `fractions` (e.g. {"validation": 0.1, "test": 0.1}) are carved out, the rest is "train".

    Identical texts stay in the same split (so duplicates cannot leak into evaluation); groups of identical texts
    are allotted per stratum (the label of their first row), so every class keeps its share in every split.
    """
    codes, _ = pd.factorize(pd.Series(texts, dtype=object))
    _, first_rows = np.unique(codes, return_index=True)
    group_strata = strata[first_rows] if strata is not None else np.zeros(len(first_rows), dtype=np.int64)
    rng = np.random.default_rng(seed)
    assignment = np.zeros(len(first_rows), dtype=np.int64)  # 0 = train, i + 1 = i-th carved split
    names = [n for n, f in fractions.items() if f > 0]
    for stratum in np.unique(group_strata):
        groups = rng.permutation(np.flatnonzero(group_strata == stratum))
        start = 0
        for i, name in enumerate(names):
            take = int(round(fractions[name] * len(groups)))
            assignment[groups[start:start + take]] = i + 1
            start += take
    row_assignment = assignment[codes]
    out = {"train": np.flatnonzero(row_assignment == 0)}
    for i, name in enumerate(names):
        out[name] = np.flatnonzero(row_assignment == i + 1)
    return out
