"""Label counts and inverse-frequency sample weights on toy sets."""

from __future__ import annotations

import numpy as np
import pytest

from data.sampling import label_counts, sample_weights


def test_multiclass_weights_equal_inverse_frequency_with_neutral_unlabelled():
    spec = {"name": "t", "type": "multiclass", "labels": ["a", "b", "c"]}
    values = np.array([0, 0, 0, 1, -100, 2, 2, 0])
    assert label_counts(spec, values).tolist() == [4, 1, 2]
    weights = sample_weights(spec, values)
    labelled = values != -100
    inverse = np.array([1 / 4, 1, 1 / 2])[values[labelled]]
    np.testing.assert_allclose(weights[labelled], inverse / inverse.mean())
    assert weights[4] == 1.0 and weights.mean() == pytest.approx(1.0)
    assert weights[3] / weights[0] == pytest.approx(4.0)


def test_binary_weights():
    spec = {"name": "t", "type": "binary", "labels": ["0", "1"]}
    values = np.array([1, 0, 0, 0], dtype=np.float32)
    assert label_counts(spec, values).tolist() == [3, 1]
    np.testing.assert_allclose(sample_weights(spec, values), [2.0, 2 / 3, 2 / 3, 2 / 3])


def test_multilabel_mean_and_max_modes():
    spec = {"name": "t", "type": "multilabel", "labels": ["a", "b"]}
    values = np.array([[1, 0], [1, 0], [1, 1], [0, 0], [-100, -100]], dtype=np.float32)
    assert label_counts(spec, values).tolist() == [3, 1]
    inv_a, inv_b, inv_none = 1 / 3, 1.0, 1.0
    mean_raw = np.array([inv_a, inv_a, (inv_a + inv_b) / 2, inv_none])
    max_raw = np.array([inv_a, inv_a, inv_b, inv_none])
    np.testing.assert_allclose(sample_weights(spec, values, "mean")[:4], mean_raw / mean_raw.mean())
    np.testing.assert_allclose(sample_weights(spec, values, "max")[:4], max_raw / max_raw.mean())
    assert sample_weights(spec, values)[4] == 1.0


def test_regression_counts_and_refusal():
    spec = {"name": "r", "type": "regression", "labels": ["x", "y"]}
    values = np.array([[1.0, np.nan], [np.nan, np.nan], [2.0, 3.0]])
    assert label_counts(spec, values).tolist() == [2, 1]
    with pytest.raises(ValueError, match="needs a classification task"):
        sample_weights(spec, values)
    with pytest.raises(ValueError, match="mode must be mean or max"):
        sample_weights({"name": "t", "type": "binary", "labels": ["0", "1"]}, np.array([0.0, 1.0]), "median")
