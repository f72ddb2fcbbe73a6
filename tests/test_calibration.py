"""Threshold fitting (exact search), temperature scaling and expected calibration error."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from modeling.postprocessing import probabilities
from training.calibration import (
    best_f1_threshold,
    confidence_and_correct,
    expected_calibration_error,
    fit_task_calibration,
    fit_temperature,
    fit_thresholds,
    negative_log_likelihood,
    reliability_bins,
)

BINARY = {"name": "toxic", "type": "binary", "labels": ["clean", "toxic"]}
MULTILABEL = {"name": "tags", "type": "multilabel", "labels": ["x", "y"]}


def brute_force_best_f1(scores: np.ndarray, targets: np.ndarray) -> float:
    return max(f1_score(targets, scores >= t, zero_division=0.0) for t in np.unique(scores))


def test_threshold_beats_half_on_toy_whose_best_cut_is_elsewhere():
    # positives score 0.25-0.45, negatives below 0.2: nothing reaches 0.5, the best cut is near 0.22.
    scores = np.array([0.05, 0.1, 0.15, 0.18, 0.25, 0.3, 0.4, 0.45])
    targets = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    threshold, f1 = best_f1_threshold(scores, targets)
    assert f1 == 1.0
    assert threshold == pytest.approx((0.18 + 0.25) / 2)  # midway between neighbouring scores
    assert f1_score(targets, scores >= 0.5, zero_division=0.0) == 0.0
    assert f1_score(targets, scores >= threshold) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_threshold_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(200), 2)  # many tied scores
    targets = (rng.random(200) < 0.3 + 0.4 * scores).astype(int)
    threshold, f1 = best_f1_threshold(scores, targets)
    assert f1 == pytest.approx(brute_force_best_f1(scores, targets))
    assert f1_score(targets, scores >= threshold) == pytest.approx(f1)


def test_threshold_when_everything_is_positive_and_without_positives():
    assert best_f1_threshold(np.array([0.2, 0.6]), np.array([1, 1])) == (0.2, 1.0)
    assert best_f1_threshold(np.array([0.2, 0.6]), np.array([0, 0])) == (0.5, None)


def test_fit_thresholds_per_label_with_masks():
    probs = np.array([[0.3, 0.9], [0.35, 0.8], [0.1, 0.7], [0.2, -1.0], [0.4, 0.6]])
    labels = np.array([[1, 0], [1, 0], [0, 0], [0, -100], [-100, 0]], dtype=np.float32)
    logits = np.log(np.clip(probs, 1e-9, None)) - np.log1p(-np.clip(probs, None, 1 - 1e-9))
    thresholds, details = fit_thresholds(MULTILABEL, logits, labels)
    assert thresholds["x"] == pytest.approx((0.3 + 0.2) / 2)
    assert details["x"] == {"f1": 1.0, "n": 4}
    assert thresholds["y"] == 0.5 and details["y"]["f1"] is None and "no positive example" in details["y"]["reason"]
    binary, _ = fit_thresholds(BINARY, logits[:3, 0], labels[:3, 0])
    assert list(binary) == ["toxic"] and binary["toxic"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="multilabel and binary"):
        fit_thresholds({"name": "e", "type": "multiclass", "labels": ["a", "b"]}, logits, labels)


def over_confident_multiclass(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    predicted = np.where(rng.random(n) < 0.7, labels, rng.integers(0, 3, n))
    logits = 8.0 * np.eye(3)[predicted] + rng.normal(0, 0.5, (n, 3))
    return logits, labels


def test_temperature_scaling_lowers_nll_on_over_confident_multiclass():
    logits, labels = over_confident_multiclass()
    labels[:10] = -100
    t = fit_temperature("multiclass", logits, labels)
    assert t > 2.0
    assert negative_log_likelihood("multiclass", logits, labels, t) < negative_log_likelihood("multiclass", logits,
                                                                                                labels) - 0.5
    fitted = fit_task_calibration({"name": "e", "type": "multiclass", "labels": ["a", "b", "c"]}, logits, labels)
    assert fitted["temperature"] == pytest.approx(t)
    assert fitted["nll_after"] < fitted["nll_before"] and fitted["ece_after"] < fitted["ece_before"]


def test_temperature_scaling_sigmoid_and_thresholds_after_scaling():
    rng = np.random.default_rng(1)
    labels = (rng.random(300) < 0.5).astype(np.float32)
    logits = np.where(rng.random(300) < 0.75, 2 * labels - 1, 1 - 2 * labels) * 6.0 + rng.normal(0, 0.3, 300)
    fitted = fit_task_calibration(BINARY, logits, labels)
    assert fitted["temperature"] > 2.0 and fitted["nll_after"] < fitted["nll_before"]
    # the threshold lives on the scaled probabilities: it separates the same rows as the unscaled best cut.
    scaled = probabilities("binary", logits, fitted["temperature"])
    best = brute_force_best_f1(scaled, labels)
    assert f1_score(labels, scaled >= fitted["thresholds"]["toxic"]) == pytest.approx(best)


def test_temperature_is_one_without_labels():
    assert fit_temperature("binary", np.array([3.0, -2.0]), np.array([-100.0, -100.0])) == 1.0
    with pytest.raises(ValueError, match="classification"):
        fit_temperature("regression", np.zeros(2), np.zeros(2))


def test_ece_hand_computed():
    confidence = np.array([0.12, 0.16, 0.81, 0.85, 0.95])
    correct = np.array([0, 1, 1, 1, 0])
    # 10 bins: [0.1, 0.2) holds .12/.16 (acc .5, conf .14); [0.8, 0.9) holds .81/.85 (acc 1, conf .83); [0.9, 1] .95.
    expected = (2 * abs(0.5 - 0.14) + 2 * abs(1 - 0.83) + 1 * 0.95) / 5
    assert expected_calibration_error(confidence, correct, n_bins=10) == pytest.approx(expected)
    bins = reliability_bins(confidence, correct, n_bins=10)
    assert bins["count"] == [0, 2, 0, 0, 0, 0, 0, 0, 2, 1]
    assert bins["accuracy"][1] == 0.5 and bins["confidence"][0] is None
    assert expected_calibration_error(np.array([]), np.array([])) is None


def test_ece_multiclass_top_label_and_binary_positive_probability():
    probs = np.array([[0.72, 0.28], [0.36, 0.64], [0.5, 0.5]])
    conf, correct = confidence_and_correct("multiclass", probs, np.array([0, 0, -100]))
    assert conf.tolist() == [0.72, 0.64] and correct.tolist() == [1.0, 0.0]
    assert expected_calibration_error(conf, correct, n_bins=10) == pytest.approx((0.28 + 0.64) / 2)
    conf, outcome = confidence_and_correct("binary", np.array([0.9, 0.2, 0.4]), np.array([1.0, 0.0, -100.0]))
    assert conf.tolist() == [0.9, 0.2] and outcome.tolist() == [1.0, 0.0]
