"""Per-task metrics against hand-computed values, undefined metrics as None with a reason, compute_metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from transformers import EvalPrediction

from training.metrics import TaskMetric, build_compute_metrics, compute_task_report, resolve_primary_metrics

MULTICLASS = {"name": "emotion", "type": "multiclass", "labels": ["anger", "joy", "fear", "grief"]}
MULTILABEL = {"name": "tags", "type": "multilabel", "labels": ["x", "y", "z"]}
BINARY = {"name": "toxic", "type": "binary", "labels": ["clean", "toxic"]}
REGRESSION = {"name": "vad", "type": "regression", "labels": ["V", "A"]}


def logit(p):
    p = np.asarray(p, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


def find_nan(value, path="report"):
    """Paths of every NaN/inf float anywhere in a nested structure."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in find_nan(v, f"{path}.{k}")]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in find_nan(v, f"{path}[{i}]")]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return [path]
    return []


def multiclass_case():
    # true: anger anger joy joy fear (missing); predicted (argmax): anger joy joy joy anger; 'grief' never appears.
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.2, 0.6, 0.1, 0.1], [0.1, 0.8, 0.05, 0.05], [0.3, 0.5, 0.1, 0.1],
                      [0.4, 0.3, 0.2, 0.1], [0.1, 0.1, 0.7, 0.1]])
    labels = np.array([0, 0, 1, 1, 2, -100])
    return np.log(probs), labels, probs


def test_multiclass_hand_computed():
    logits, labels, probs = multiclass_case()
    report = compute_task_report(MULTICLASS, logits, labels)
    assert report["n"] == 5
    m = report["metrics"]
    assert m["accuracy"] == pytest.approx(3 / 5)
    # per class F1: anger 2*1/(2+1+1)=0.5, joy 2*2/(4+1+0)=0.8, fear 0 (missed), grief undefined (excluded).
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert m["weighted_f1"] == pytest.approx((0.5 * 2 + 0.8 * 2 + 0.0 * 1) / 5)
    pc = report["per_class"]
    assert {k: pc["anger"][k] for k in ("support", "precision", "recall", "f1")} == pytest.approx(
        {"support": 2, "precision": 0.5, "recall": 0.5, "f1": 0.5})
    assert pc["joy"]["precision"] == pytest.approx(2 / 3) and pc["joy"]["recall"] == 1.0
    assert pc["fear"]["precision"] is None and pc["fear"]["recall"] == 0.0 and pc["fear"]["f1"] == 0.0
    assert report["confusion_matrix"] == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    expected_nll = -np.mean(np.log([0.7, 0.2, 0.8, 0.5, 0.2]))
    assert m["nll"] == pytest.approx(expected_nll)
    # one-vs-rest ROC-AUC of anger: positives .7/.2 vs. negatives .1/.3/.4 -> 4 of 6 pairs ranked right.
    assert pc["anger"]["roc_auc"] == pytest.approx(4 / 6)


def test_class_absent_from_split_is_none_with_reason_never_nan():
    logits, labels, _ = multiclass_case()
    report = compute_task_report(MULTICLASS, logits, labels, temperature=2.0)
    grief = report["per_class"]["grief"]
    assert grief == {"support": 0, "precision": None, "recall": None, "f1": None, "roc_auc": None}
    assert report["undefined"]["per_class.grief.recall"] == "class 'grief' absent from labels"
    assert "grief" in report["undefined"]["per_class.grief.f1"]
    assert report["undefined"]["per_class.fear.precision"] == "class 'fear' never predicted"
    assert find_nan(report) == []
    empty = compute_task_report(MULTICLASS, logits, np.full(6, -100))
    assert empty["n"] == 0 and empty["metrics"]["accuracy"] is None
    assert empty["undefined"]["metrics.accuracy"] == "no labelled rows"
    assert find_nan(empty) == []


def multilabel_case():
    probs = np.array([[0.9, 0.7, 0.2], [0.8, 0.3, 0.1], [0.2, 0.6, 0.8], [0.1, 0.4, 0.3], [0.15, 0.2, 0.35]])
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 1, -100], [0, 1, 0], [0, 0, 0]], dtype=np.float32)
    return logit(probs), labels


def test_multilabel_hand_computed():
    logits, labels = multilabel_case()
    report = compute_task_report(MULTILABEL, logits, labels, thresholds={"y": 0.25})
    at05 = report["at_0.5"]
    # x: tp 2 -> F1 1; y: tp 1, fp 1, fn 2 -> F1 0.4; z: no positive and never predicted -> undefined.
    assert at05["micro_f1"] == pytest.approx(6 / 9)
    assert at05["macro_f1"] == pytest.approx(0.7)
    assert at05["weighted_f1"] == pytest.approx((1.0 * 2 + 0.4 * 3) / 5)
    # fully labelled rows 0, 1, 3, 4: sample F1 2/3, 2/3, 0, 1 (nothing true, nothing predicted); only row 4 exact.
    assert at05["samples_f1"] == pytest.approx(7 / 12)
    assert at05["subset_accuracy"] == pytest.approx(1 / 4)
    assert at05["hamming_loss"] == pytest.approx(3 / 14)
    assert report["per_label"]["y"]["at_0.5"] == pytest.approx({"precision": 0.5, "recall": 1 / 3, "f1": 0.4})
    assert report["per_label"]["z"]["at_0.5"]["f1"] is None
    assert report["per_label"]["z"]["support"] == 0 and report["per_label"]["z"]["n"] == 4
    assert report["per_label"]["x"]["roc_auc"] == 1.0 and report["per_label"]["y"]["roc_auc"] == 0.5
    assert report["metrics"]["roc_auc"] == pytest.approx(0.75)
    assert report["roc_auc_labels"] == 2
    assert "label 'z' has no positive example" in report["undefined"]["per_label.z.roc_auc"]
    # at the fitted threshold 0.25 label y predicts rows 0-3: tp 3, fp 1 -> F1 6/7.
    assert report["thresholds"] == {"x": 0.5, "y": 0.25, "z": 0.5}
    assert report["per_label"]["y"]["at_fitted"]["f1"] == pytest.approx(6 / 7)
    assert report["at_fitted"]["macro_f1"] == pytest.approx((1 + 6 / 7) / 2)
    assert find_nan(report) == []


def test_binary_hand_computed():
    labels = np.array([1, 0, 1, 0, -100], dtype=np.float32)
    logits = logit([0.8, 0.6, 0.3, 0.1, 0.9])
    report = compute_task_report(BINARY, logits, labels, thresholds={"toxic": 0.2})
    assert report["n"] == 4 and report["positive_label"] == "toxic"
    at05 = report["at_0.5"]
    assert at05.pop("confusion_matrix") == [[1, 1], [1, 1]]
    assert at05 == pytest.approx({"accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5,
                                  "balanced_accuracy": 0.5})
    fitted = report["at_fitted"]
    assert fitted["f1"] == pytest.approx(0.8) and fitted["accuracy"] == pytest.approx(0.75)
    assert fitted["balanced_accuracy"] == pytest.approx(0.75)
    assert fitted["confusion_matrix"] == [[1, 1], [0, 2]]
    assert report["metrics"]["roc_auc"] == pytest.approx(0.75)
    one_class = compute_task_report(BINARY, logits[:1], labels[:1])
    assert one_class["metrics"]["roc_auc"] is None and one_class["at_0.5"]["balanced_accuracy"] is None
    assert one_class["undefined"]["at_0.5.balanced_accuracy"] == "needs both classes in labels"


def test_regression_hand_computed_per_output_in_user_units():
    labels = np.array([[1, 1], [2, np.nan], [3, 2], [4, 3]], dtype=np.float32)
    preds = np.array([[2, 3], [2, 3], [4, 3], [4, 3]], dtype=np.float32)
    report = compute_task_report(REGRESSION, preds, labels)
    v = report["outputs"]["V"]
    assert v["n"] == 4
    assert v["mse"] == pytest.approx(0.5) and v["mae"] == pytest.approx(0.5)
    assert v["r2"] == pytest.approx(1 - 2 / 5)
    assert v["pearson"] == pytest.approx(4 / (2 * math.sqrt(5)))
    assert v["spearman"] == pytest.approx(4 / (2 * math.sqrt(5)))
    assert v["ccc"] == pytest.approx(2 * 1.0 / (1.25 + 1.0 + 0.25))
    a = report["outputs"]["A"]
    assert a["n"] == 3 and a["mse"] == pytest.approx((4 + 1 + 0) / 3)
    assert a["pearson"] is None and a["ccc"] == 0.0
    assert report["undefined"]["outputs.A.pearson"] == "output 'A': predictions are constant"
    assert report["metrics"]["ccc"] == pytest.approx(0.4)
    assert report["metrics"]["pearson"] == pytest.approx(v["pearson"])
    assert find_nan(report) == []


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="out of range"):
        compute_task_report(MULTICLASS, np.zeros((2, 4)), np.array([0, 7]))
    with pytest.raises(ValueError, match="must be 0, 1 or -100"):
        compute_task_report(BINARY, np.zeros(2), np.array([0.0, 0.5]))
    with pytest.raises(ValueError, match="shape"):
        compute_task_report(MULTILABEL, np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="unknown label"):
        compute_task_report(MULTILABEL, np.zeros((2, 3)), np.zeros((2, 3)), thresholds={"w": 0.3})
    with pytest.raises(ValueError, match="allowed: multiclass"):
        compute_task_report({"name": "t", "type": "ranking", "labels": []}, np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="allowed: ccc"):
        resolve_primary_metrics([REGRESSION], {"vad": "mse"})


def test_evaluate_metric_subclass_works_offline():
    metric = TaskMetric(config_name="binary", keep_in_memory=True)
    labels = np.array([1, 0, 1, 0], dtype=np.float32)
    report = metric.compute(predictions=logit([0.8, 0.6, 0.3, 0.1]), references=labels, task=BINARY)
    assert report["at_0.5"]["f1"] == pytest.approx(0.5)
    assert report["metrics"]["roc_auc"] == pytest.approx(0.75)


def test_compute_metrics_tuple_wrapped_dict_and_score():
    mc_logits, mc_labels, _ = multiclass_case()
    ml_logits, ml_labels = multilabel_case()
    reg_labels = np.array([[1, 1], [2, np.nan], [3, 2], [4, 3], [np.nan, np.nan]], dtype=np.float32)
    reg_preds = np.array([[2, 3], [2, 3], [4, 3], [4, 3], [0, 0]], dtype=np.float32)
    compute = build_compute_metrics([MULTICLASS, MULTILABEL, REGRESSION])
    preds = ({"emotion": mc_logits[:5], "tags": ml_logits, "vad": reg_preds},)
    out = compute(EvalPrediction(predictions=preds, label_ids=(mc_labels[:5], ml_labels, reg_labels)))
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    assert out["emotion_accuracy"] == pytest.approx(0.6)
    assert out["tags_macro_f1"] == pytest.approx(0.7)
    assert out["vad_ccc_V"] == pytest.approx(0.8) and out["vad_ccc"] == pytest.approx(0.4)
    assert "vad_pearson_A" not in out  # undefined (constant predictions): left out
    assert out["score"] == pytest.approx(np.mean([(0.5 + 0.8) / 3, 0.7, 0.4]))
    fitted = build_compute_metrics([MULTILABEL], {"multilabel": "micro_f1"}, thresholds={"tags": {"y": 0.25}})
    single = fitted(EvalPrediction(predictions={"tags": ml_logits}, label_ids=ml_labels))
    assert single["tags_micro_f1"] == pytest.approx(2 * 5 / (2 * 5 + 1 + 0)) == single["score"]


def test_compute_metrics_rejects_mismatched_labels():
    compute = build_compute_metrics([BINARY, REGRESSION])
    with pytest.raises(ValueError, match="2 tasks"):
        compute(EvalPrediction(predictions={"toxic": np.zeros(2), "vad": np.zeros((2, 2))}, label_ids=np.zeros(2)))


def test_compute_metrics_reports_the_joint_accuracy_of_the_classification_tasks():
    compute = build_compute_metrics([MULTICLASS, BINARY, REGRESSION])
    mc_logits = np.eye(4, dtype=np.float32)  # predicts anger, joy, fear, grief
    mc_labels = np.array([0, 1, 0, -100])  # right, right, wrong, unlabelled
    binary_logits = np.array([2.0, -2.0, 2.0, 2.0], dtype=np.float32)
    binary_labels = np.array([1.0, 0.0, 1.0, 1.0], dtype=np.float32)  # all right
    reg = np.zeros((4, 2), dtype=np.float32)
    out = compute(EvalPrediction(predictions={"emotion": mc_logits, "toxic": binary_logits, "vad": reg},
                                 label_ids=(mc_labels, binary_labels, reg)))
    assert out["joint_accuracy"] == pytest.approx(2 / 3)  # rows 0 and 1 of the three labelled for both
