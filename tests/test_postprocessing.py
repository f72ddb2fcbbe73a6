"""Decoding of head outputs: temperatures, thresholds, label order, regression values, CSV flattening."""

from __future__ import annotations

import numpy as np
import pytest

from modeling.postprocessing import decode_outputs, decode_task, flatten_result, sigmoid, softmax, task_probabilities

MULTICLASS = {"name": "sentiment", "type": "multiclass", "labels": ["negative", "neutral", "positive"]}
MULTILABEL = {"name": "emotions", "type": "multilabel", "labels": ["anger", "joy", "fear"]}
BINARY = {"name": "ei", "type": "binary", "labels": ["I", "E"]}
REGRESSION = {"name": "vad", "type": "regression", "labels": ["V", "A", "D"]}


def test_softmax_and_sigmoid_are_stable_and_exact():
    probs = softmax(np.array([[1000.0, 1000.0, 0.0], [0.0, np.log(3.0), 0.0]]))
    np.testing.assert_allclose(probs[0], [0.5, 0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(probs[1], [0.2, 0.6, 0.2], atol=1e-12)
    np.testing.assert_allclose(sigmoid(np.array([-1000.0, 0.0, np.log(3.0), 1000.0])), [0.0, 0.5, 0.75, 1.0])


def test_multiclass_temperature_flattens_probabilities_but_keeps_argmax():
    logits = np.array([[0.0, 2.0, 0.0]])
    plain = decode_task(MULTICLASS, logits)[0]
    hot = decode_task(MULTICLASS, logits, temperature=2.0)[0]
    assert plain["label"] == hot["label"] == "neutral"
    expected = np.exp(1.0) / (np.exp(1.0) + 2.0)
    assert hot["probabilities"]["neutral"] == pytest.approx(expected, abs=1e-12)
    assert plain["probabilities"]["neutral"] > hot["probabilities"]["neutral"]
    assert list(hot["probabilities"]) == MULTICLASS["labels"]


def test_multilabel_thresholds_per_label_and_default_half():
    logits = np.array([[0.0, np.log(0.3 / 0.7), np.log(0.6 / 0.4)]])  # p = 0.5, 0.3, 0.6
    default = decode_task(MULTILABEL, logits)[0]
    assert default["labels"] == ["anger", "fear"]
    tuned = decode_task(MULTILABEL, logits, thresholds={"anger": 0.55, "joy": 0.25})[0]
    assert tuned["labels"] == ["joy", "fear"]
    assert tuned["probabilities"]["joy"] == pytest.approx(0.3)


def test_binary_uses_positive_threshold_and_temperature():
    logits = np.array([np.log(0.4 / 0.6), 0.0])  # p = 0.4, 0.5
    rows = decode_task(BINARY, logits)
    assert [r["label"] for r in rows] == ["I", "E"]
    rows = decode_task(BINARY, logits, thresholds={"E": 0.35})
    assert [r["label"] for r in rows] == ["E", "E"]
    cooled = decode_task(BINARY, np.array([2.0]), temperature=4.0)[0]
    assert cooled["probability"] == pytest.approx(1 / (1 + np.exp(-0.5)))


def test_regression_values_are_passed_through_by_output_name():
    rows = decode_task(REGRESSION, np.array([[3.1, 2.5, 4.0], [1.0, 1.5, 2.0]]))
    assert rows[1] == {"values": {"V": 1.0, "A": 1.5, "D": 2.0}}


def test_decode_outputs_joins_tasks_per_row_in_config_order():
    tasks = [MULTICLASS, BINARY, REGRESSION]
    logits = {"ei": np.array([5.0, -5.0]), "sentiment": np.eye(3)[:2] * 4, "vad": np.ones((2, 3))}
    rows = decode_outputs(tasks, logits, thresholds={"ei": {"E": 0.9}}, temperatures={"sentiment": 1.5})
    assert list(rows[0]) == ["sentiment", "ei", "vad"]
    assert rows[0]["sentiment"]["label"] == "negative" and rows[1]["sentiment"]["label"] == "neutral"
    assert rows[0]["ei"]["label"] == "E" and rows[1]["ei"]["label"] == "I"


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="unknown labels"):
        decode_task(MULTILABEL, np.zeros((1, 3)), thresholds={"surprise": 0.5})
    with pytest.raises(ValueError, match="must be > 0"):
        task_probabilities(MULTICLASS, np.zeros((1, 3)), temperature=0.0)
    with pytest.raises(ValueError, match="lack tasks"):
        decode_outputs([MULTICLASS, BINARY], {"sentiment": np.zeros((1, 3))})
    with pytest.raises(ValueError, match="batch size"):
        decode_outputs([MULTICLASS, BINARY], {"sentiment": np.zeros((1, 3)), "ei": np.zeros(2)})


def test_flatten_result_gives_csv_columns():
    row = decode_outputs(
        [MULTICLASS, MULTILABEL, BINARY, REGRESSION],
        {"sentiment": np.array([[0.0, 0.0, 1.0]]), "emotions": np.array([[5.0, 5.0, -5.0]]),
         "ei": np.array([3.0]), "vad": np.array([[1.0, 2.0, 3.0]])},
    )[0]
    flat = flatten_result(row)
    assert flat["sentiment"] == "positive" and flat["emotions"] == "anger|joy" and flat["ei"] == "E"
    assert flat["vad_D"] == 3.0 and "ei_probability" in flat and "emotions_prob_fear" in flat
    assert set(flat) == {
        "sentiment", "sentiment_prob_negative", "sentiment_prob_neutral", "sentiment_prob_positive",
        "emotions", "emotions_prob_anger", "emotions_prob_joy", "emotions_prob_fear",
        "ei", "ei_probability", "vad_V", "vad_A", "vad_D",
    }
