"""Per-task metrics (scikit-learn, offline) and the Trainer's `compute_metrics`.

`compute_task_report` gives the full nested report of one task. An undefined metric is `None` in the report and
its reason is in the task's parallel `undefined` map, keyed by the dotted path of the value
(`{"per_class.grief.recall": "class 'grief' absent from labels"}`); no NaN is ever returned.
`TaskMetric` wraps it as an `evaluate.Metric` (no Hub download), and `build_compute_metrics` flattens it for the
Trainer into `{task}_{metric}` floats plus `score`, the mean of each task's primary metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import datasets
import evaluate
import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

from modeling.postprocessing import DEFAULT_THRESHOLD, probabilities, threshold_vector
from modeling.task_schema import IGNORE_INDEX, TASK_TYPES, labelled_entries
from training.calibration import DEFAULT_N_BINS, calibration_summary, check_binary_values
from training.joint_metrics import joint_accuracy

DEFAULT_PRIMARY_METRICS = {"multiclass": "macro_f1", "multilabel": "macro_f1", "binary": "f1", "regression": "ccc"}
REGRESSION_METRICS = ("mse", "mae", "r2", "pearson", "spearman", "ccc")
# Higher-is-better metrics only, so that their mean (the `score`) is meaningful.
# Every scalar a task reports (`{task}_{metric}` in the Trainer's metrics), and those where lower is better.
TASK_METRICS = {
    "multiclass": ("accuracy", "macro_f1", "weighted_f1", "roc_auc", "nll", "ece"),
    "multilabel": ("micro_f1", "macro_f1", "weighted_f1", "samples_f1", "subset_accuracy", "hamming_loss", "roc_auc",
                   "nll", "ece"),
    "binary": ("accuracy", "precision", "recall", "f1", "balanced_accuracy", "roc_auc", "nll", "ece"),
    "regression": REGRESSION_METRICS,
}
LOWER_IS_BETTER = ("mse", "mae", "hamming_loss", "nll", "ece", "loss")
PRIMARY_CHOICES = {
    "multiclass": ("macro_f1", "weighted_f1", "accuracy", "roc_auc"),
    "multilabel": ("macro_f1", "micro_f1", "weighted_f1", "samples_f1", "subset_accuracy", "roc_auc"),
    "binary": ("f1", "accuracy", "balanced_accuracy", "roc_auc"),
    "regression": ("ccc", "pearson", "spearman", "r2"),
}


class _Recorder:
    """Collects `undefined` reasons while values are stored: a None value always comes with a reason."""

    def __init__(self) -> None:
        self.undefined: dict[str, str] = {}

    def put(self, target: dict, key: str, value, reason: str, path: str) -> None:
        if value is None or not math.isfinite(float(value)):
            target[key] = None
            self.undefined[path] = reason
        else:
            target[key] = float(value)


def _safe_div(num: float, den: float) -> float | None:
    return num / den if den else None


def _mean_defined(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _calibration_section(kind: str, logits: np.ndarray, labels: np.ndarray, temperature: float | None,
                         n_bins: int, rec: _Recorder, metrics: dict) -> dict:
    """NLL/ECE before and after temperature scaling (reliability bins included); NLL/ECE at T also in `metrics`."""
    cal = calibration_summary(kind, logits, labels, temperature, n_bins)
    for key in ("nll_before", "ece_before", "nll_after", "ece_after"):
        rec.put(cal, key, cal[key], "no labelled rows", f"calibration.{key}")
    rec.put(metrics, "nll", cal["nll_after"], "no labelled rows", "metrics.nll")
    rec.put(metrics, "ece", cal["ece_after"], "no labelled rows", "metrics.ece")
    return cal


def _multiclass_per_class(names: list[str], y: np.ndarray, pred: np.ndarray, probs: np.ndarray,
                          rec: _Recorder) -> tuple[dict, np.ndarray]:
    """Precision/recall/F1/support and one-vs-rest ROC-AUC per class, and the confusion matrix (rows = true)."""
    cm = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    per_class = {}
    for c, name in enumerate(names):
        tp, predicted, support = float(cm[c, c]), float(cm[:, c].sum()), float(cm[c].sum())
        precision, recall, f1 = _prf(tp, predicted - tp, support - tp)
        entry: dict = {"support": int(support)}
        base = f"per_class.{name}"
        rec.put(entry, "precision", precision, f"class {name!r} never predicted", f"{base}.precision")
        rec.put(entry, "recall", recall, f"class {name!r} absent from labels", f"{base}.recall")
        rec.put(entry, "f1", f1, f"class {name!r} absent from labels and never predicted", f"{base}.f1")
        present = y == c
        auc = roc_auc_score(present, probs[:, c]) if 0 < present.sum() < len(y) else None
        reason = f"class {name!r} absent from labels" if not present.any() else f"only class {name!r} in labels"
        rec.put(entry, "roc_auc", auc, reason, f"{base}.roc_auc")
        per_class[name] = entry
    return per_class, cm


def _multiclass_report(task: dict, logits: np.ndarray, labels: np.ndarray, temperature: float | None,
                       n_bins: int, rec: _Recorder) -> dict:
    names = list(task["labels"])
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != len(names):
        raise ValueError(f"task {task['name']!r}: multiclass logits must have shape (N, {len(names)}), "
                         f"got {logits.shape}")
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    mask = labels != IGNORE_INDEX
    bad = labels[mask][(labels[mask] < 0) | (labels[mask] >= len(names))]
    if bad.size:
        raise ValueError(f"task {task['name']!r}: class index {int(bad[0])} out of range 0..{len(names) - 1} "
                         f"(or -100 for missing)")
    y, z = labels[mask], logits[mask]
    probs = probabilities("multiclass", z, temperature)
    pred = z.argmax(axis=1)
    report: dict = {"n": int(mask.sum())}
    report["per_class"], cm = _multiclass_per_class(names, y, pred, probs, rec)
    f1s = [c["f1"] for c in report["per_class"].values()]
    support = np.array([c["support"] for c in report["per_class"].values()], dtype=np.float64)
    metrics: dict = {}
    reason = "no labelled rows"
    rec.put(metrics, "accuracy", accuracy_score(y, pred) if y.size else None, reason, "metrics.accuracy")
    rec.put(metrics, "macro_f1", _mean_defined(f1s), reason, "metrics.macro_f1")
    weighted = _safe_div(sum(f * s for f, s in zip(f1s, support) if s), support.sum())
    rec.put(metrics, "weighted_f1", weighted, reason, "metrics.weighted_f1")
    aucs = [c["roc_auc"] for c in report["per_class"].values()]
    rec.put(metrics, "roc_auc", _mean_defined(aucs), "ROC-AUC undefined for every class", "metrics.roc_auc")
    report["roc_auc_classes"] = sum(a is not None for a in aucs)
    report["confusion_matrix"] = cm.tolist()
    report["calibration"] = _calibration_section("multiclass", logits, labels, temperature, n_bins, rec, metrics)
    report["metrics"] = metrics
    return report


def _binary_counts(y: np.ndarray, pred: np.ndarray) -> tuple[float, float, float, float]:
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    tn = float(np.sum(~pred & (y == 0)))
    return tp, fp, fn, tn


def _prf(tp: float, fp: float, fn: float) -> tuple[float | None, float | None, float | None]:
    return _safe_div(tp, tp + fp), _safe_div(tp, tp + fn), _safe_div(2 * tp, 2 * tp + fp + fn)


def _label_scores(name: str, y: np.ndarray, pred: np.ndarray, rec: _Recorder, base: str) -> tuple[dict, tuple]:
    """Precision/recall/F1 of one label; returns the entry and its (tp, fp, fn, tn)."""
    counts = _binary_counts(y, pred)
    precision, recall, f1 = _prf(*counts[:3])
    entry: dict = {}
    rec.put(entry, "precision", precision, f"label {name!r} never predicted", f"{base}.precision")
    rec.put(entry, "recall", recall, f"label {name!r} has no positive example", f"{base}.recall")
    rec.put(entry, "f1", f1, f"label {name!r} has no positive example and is never predicted", f"{base}.f1")
    return entry, counts


def _multilabel_at(names: list[str], y: np.ndarray, mask: np.ndarray, probs: np.ndarray, cuts: np.ndarray,
                   rec: _Recorder, tag: str) -> tuple[dict, dict]:
    """Set-based multilabel metrics and per-label scores at one threshold per label."""
    pred = probs >= cuts[None, :]
    per_label, totals, f1s, weights = {}, np.zeros(4), [], []
    for j, name in enumerate(names):
        rows = mask[:, j]
        entry, counts = _label_scores(name, y[rows, j], pred[rows, j], rec, f"per_label.{name}.{tag}")
        per_label[name] = entry
        totals += counts
        f1s.append(entry["f1"])
        weights.append(counts[0] + counts[2])
    out: dict = {}
    reason = "no labelled entries"
    rec.put(out, "micro_f1", _prf(*totals[:3])[2], "no positive label and no positive prediction", f"{tag}.micro_f1")
    rec.put(out, "macro_f1", _mean_defined(f1s), "F1 undefined for every label", f"{tag}.macro_f1")
    weighted = _safe_div(sum(f * w for f, w in zip(f1s, weights) if w), sum(weights))
    rec.put(out, "weighted_f1", weighted, "no positive label", f"{tag}.weighted_f1")
    full = mask.all(axis=1)
    yt, pt = y[full].astype(bool), pred[full]
    both = (yt & pt).sum(axis=1)
    den = yt.sum(axis=1) + pt.sum(axis=1)
    samples = np.where(den == 0, 1.0, 2.0 * both / np.maximum(den, 1)).mean() if full.any() else None
    rec.put(out, "samples_f1", samples, "no fully labelled row", f"{tag}.samples_f1")
    subset = (yt == pt).all(axis=1).mean() if full.any() else None
    rec.put(out, "subset_accuracy", subset, "no fully labelled row", f"{tag}.subset_accuracy")
    hamming = _safe_div(float(totals[1] + totals[2]), float(totals.sum()))
    rec.put(out, "hamming_loss", hamming, reason, f"{tag}.hamming_loss")
    return out, per_label


def _label_auc(name: str, y: np.ndarray, p: np.ndarray, rec: _Recorder, target: dict, path: str) -> None:
    positives = int(y.sum())
    auc = roc_auc_score(y, p) if 0 < positives < y.size else None
    reason = (f"label {name!r} has no labelled row" if y.size == 0 else
              f"label {name!r} has no positive example" if positives == 0 else f"label {name!r} has no negative")
    rec.put(target, "roc_auc", auc, reason, path)


def _thresholded_sections(report: dict, compute: Callable, thresholds) -> None:
    """Fill `at_0.5` and, when thresholds are given, `at_fitted` through `compute(cuts, tag)`."""
    report["at_0.5"] = compute(np.full(len(report["thresholds"]), DEFAULT_THRESHOLD), "at_0.5")
    if thresholds is not None:
        report["at_fitted"] = compute(np.array(list(report["thresholds"].values())), "at_fitted")


def _multilabel_report(task: dict, logits: np.ndarray, labels: np.ndarray, thresholds, temperature: float | None,
                       n_bins: int, rec: _Recorder) -> dict:
    names = list(task["labels"])
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != len(names) or labels.shape != logits.shape:
        raise ValueError(f"task {task['name']!r}: multilabel logits and labels must have shape (N, {len(names)}), "
                         f"got {logits.shape} and {labels.shape}")
    mask = labelled_entries(labels)
    check_binary_values(labels, mask, task["name"])
    probs = probabilities("multilabel", logits, temperature)
    cuts = threshold_vector(task, thresholds)
    report: dict = {"n": int(mask.any(axis=1).sum()), "thresholds": dict(zip(names, cuts.tolist()))}
    per_label: dict = {n: {"support": int(labels[mask[:, j], j].sum()), "n": int(mask[:, j].sum())}
                       for j, n in enumerate(names)}

    def compute(values: np.ndarray, tag: str) -> dict:
        out, scores = _multilabel_at(names, labels, mask, probs, values, rec, tag)
        for name, entry in scores.items():
            per_label[name][tag] = entry
        return out

    _thresholded_sections(report, compute, thresholds)
    for j, name in enumerate(names):
        rows = mask[:, j]
        _label_auc(name, labels[rows, j], probs[rows, j], rec, per_label[name], f"per_label.{name}.roc_auc")
    report["per_label"] = per_label
    metrics: dict = {}
    aucs = [entry["roc_auc"] for entry in per_label.values()]
    rec.put(metrics, "roc_auc", _mean_defined(aucs), "ROC-AUC undefined for every label", "metrics.roc_auc")
    report["roc_auc_labels"] = sum(a is not None for a in aucs)
    report["calibration"] = _calibration_section("multilabel", logits, labels, temperature, n_bins, rec, metrics)
    report["metrics"] = metrics
    return report


def _binary_at(name: str, y: np.ndarray, p: np.ndarray, cut: float, rec: _Recorder, tag: str) -> dict:
    pred = p >= cut
    entry, (tp, fp, fn, tn) = _label_scores(name, y, pred, rec, tag)
    out: dict = {}
    rec.put(out, "accuracy", _safe_div(tp + tn, float(y.size)), "no labelled rows", f"{tag}.accuracy")
    out.update(entry)
    tpr, tnr = _safe_div(tp, tp + fn), _safe_div(tn, tn + fp)
    balanced = None if tpr is None or tnr is None else (tpr + tnr) / 2
    rec.put(out, "balanced_accuracy", balanced, "needs both classes in labels", f"{tag}.balanced_accuracy")
    out["confusion_matrix"] = [[int(tn), int(fp)], [int(fn), int(tp)]]
    return out


def _binary_report(task: dict, logits: np.ndarray, labels: np.ndarray, thresholds, temperature: float | None,
                   n_bins: int, rec: _Recorder) -> dict:
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    if logits.shape != labels.shape:
        raise ValueError(f"task {task['name']!r}: binary logits and labels must both have shape (N,), "
                         f"got {logits.shape} and {labels.shape}")
    mask = labelled_entries(labels)
    check_binary_values(labels, mask, task["name"])
    positive = str(task["labels"][1])
    y, p = labels[mask], probabilities("binary", logits[mask], temperature)
    cut = threshold_vector(task, thresholds)
    report: dict = {"n": int(mask.sum()), "positive_label": positive, "thresholds": {positive: float(cut[0])}}
    _thresholded_sections(report, lambda c, tag: _binary_at(positive, y, p, float(c[0]), rec, tag), thresholds)
    metrics: dict = {}
    _label_auc(positive, y, p, rec, metrics, "metrics.roc_auc")
    report["calibration"] = _calibration_section("binary", logits, labels, temperature, n_bins, rec, metrics)
    report["metrics"] = metrics
    return report


def _ccc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Lin's concordance correlation with population moments; None when both sides are constant and equal."""
    den = y.var() + p.var() + (y.mean() - p.mean()) ** 2
    return _safe_div(2.0 * float(np.mean((y - y.mean()) * (p - p.mean()))), float(den))


def _regression_output(name: str, y: np.ndarray, p: np.ndarray, rec: _Recorder) -> dict:
    base = f"outputs.{name}"
    entry: dict = {"n": int(y.size)}
    if y.size and not np.isfinite(p).all():
        for metric in REGRESSION_METRICS:
            rec.put(entry, metric, None, f"output {name!r} has non-finite predictions", f"{base}.{metric}")
        return entry
    empty = f"output {name!r} has no labelled row"
    rec.put(entry, "mse", mean_squared_error(y, p) if y.size else None, empty, f"{base}.mse")
    rec.put(entry, "mae", mean_absolute_error(y, p) if y.size else None, empty, f"{base}.mae")
    few = y.size < 2
    y_const, p_const = few or np.ptp(y) == 0, few or np.ptp(p) == 0
    rec.put(entry, "r2", None if y_const else r2_score(y, p),
            empty if few else f"output {name!r}: labels are constant", f"{base}.r2")
    why = (f"output {name!r}: fewer than 2 labelled rows" if few else
           f"output {name!r}: labels are constant" if y_const else f"output {name!r}: predictions are constant")
    rec.put(entry, "pearson", None if y_const or p_const else pearsonr(y, p)[0], why, f"{base}.pearson")
    rec.put(entry, "spearman", None if y_const or p_const else spearmanr(y, p)[0], why, f"{base}.spearman")
    rec.put(entry, "ccc", _ccc(y, p) if y.size else None,
            empty if not y.size else f"output {name!r}: labels and predictions constant and equal", f"{base}.ccc")
    return entry


def _regression_report(task: dict, preds: np.ndarray, labels: np.ndarray, rec: _Recorder) -> dict:
    names = list(task["labels"])
    preds = np.asarray(preds, dtype=np.float64).reshape(len(preds), -1)
    labels = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1)
    if preds.shape != labels.shape or preds.shape[1] != len(names):
        raise ValueError(f"task {task['name']!r}: regression predictions and labels must have shape "
                         f"(N, {len(names)}), got {preds.shape} and {labels.shape}")
    mask = ~np.isnan(labels)
    outputs = {n: _regression_output(n, labels[mask[:, k], k], preds[mask[:, k], k], rec)
               for k, n in enumerate(names)}
    metrics: dict = {}
    for metric in REGRESSION_METRICS:
        rec.put(metrics, metric, _mean_defined([o[metric] for o in outputs.values()]),
                f"{metric} undefined for every output", f"metrics.{metric}")
    return {"n": int(mask.any(axis=1).sum()), "outputs": outputs, "metrics": metrics}


def compute_task_report(task: dict, logits, labels, thresholds=None, temperature: float | None = None,
                        n_bins: int = DEFAULT_N_BINS) -> dict:
    """Full nested report of one task (see module doc); thresholds/temperature apply to classification tasks.

    `thresholds`: None (0.5 only), a float, a per-label sequence or `{label: float}` (binary: the positive label).
    Multilabel/binary reports hold `at_0.5` and, when thresholds are given, `at_fitted`.
    """
    kind = task.get("type")
    if kind not in TASK_TYPES:
        raise ValueError(f"task {task.get('name')!r}: unknown type {kind!r}; allowed: {', '.join(TASK_TYPES)}")
    rec = _Recorder()
    if kind == "multiclass":
        body = _multiclass_report(task, logits, labels, temperature, n_bins, rec)
    elif kind == "multilabel":
        body = _multilabel_report(task, logits, labels, thresholds, temperature, n_bins, rec)
    elif kind == "binary":
        body = _binary_report(task, logits, labels, thresholds, temperature, n_bins, rec)
    else:
        body = _regression_report(task, logits, labels, rec)
    return {"name": task["name"], "type": kind, "labels": list(task["labels"]), **body, "undefined": rec.undefined}


def flat_task_metrics(report: dict, fitted: bool = True) -> dict[str, float]:
    """The scalar metrics of one task report that the Trainer logs (undefined ones left out).

    Thresholded metrics come from `at_fitted` when present and `fitted` is True, else from `at_0.5`.
    """
    flat = dict(report["metrics"])
    if report["type"] in ("multilabel", "binary"):
        section = report.get("at_fitted", report["at_0.5"]) if fitted else report["at_0.5"]
        flat.update({k: v for k, v in section.items() if not isinstance(v, list)})
    if report["type"] == "regression" and len(report["outputs"]) > 1:  # one output: the means are its values
        for output, values in report["outputs"].items():
            flat.update({f"{metric}_{output}": values[metric] for metric in REGRESSION_METRICS})
    return {k: float(v) for k, v in flat.items() if v is not None}


_FEATURES = {
    "multiclass": {"predictions": datasets.Sequence(datasets.Value("float32")), "references": datasets.Value("int64")},
    "multilabel": {"predictions": datasets.Sequence(datasets.Value("float32")),
                   "references": datasets.Sequence(datasets.Value("float32"))},
    "binary": {"predictions": datasets.Value("float32"), "references": datasets.Value("float32")},
    "regression": {"predictions": datasets.Sequence(datasets.Value("float32")),
                   "references": datasets.Sequence(datasets.Value("float32"))},
}


class TaskMetric(evaluate.Metric):
    """Offline `evaluate.Metric` for one task; `config_name` is the task type.

    `compute(predictions=logits, references=labels, task=task_dict, thresholds=None, temperature=None)` returns
    `compute_task_report`. Predictions are logits (regression: predictions in the user's units).
    """

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in _FEATURES:
            raise ValueError(f"TaskMetric config_name must be a task type, one of {', '.join(TASK_TYPES)}; "
                             f"got {self.config_name!r}")
        return evaluate.MetricInfo(
            description="Multi-task classification/regression metrics computed with scikit-learn.",
            citation="", features=datasets.Features(_FEATURES[self.config_name]),
            inputs_description="predictions: logits (or regression outputs); references: labels (-100/NaN missing)",
        )

    def _compute(self, predictions, references, task: dict | None = None, thresholds=None,
                 temperature: float | None = None, n_bins: int = DEFAULT_N_BINS) -> dict:
        if task is None:
            raise ValueError("TaskMetric.compute needs task=<task dict> (name, type, labels)")
        return compute_task_report(task, np.asarray(predictions), np.asarray(references), thresholds, temperature,
                                   n_bins)


def _unwrap_predictions(predictions) -> Mapping:
    """The `{task: array}` dict, also when the Trainer wrapped it in a tuple/list."""
    while isinstance(predictions, (tuple, list)) and predictions and not isinstance(predictions, Mapping):
        predictions = predictions[0]
    if not isinstance(predictions, Mapping):
        raise ValueError(f"predictions must be a dict {{task: logits}} (or a tuple holding one), "
                         f"got {type(predictions).__name__}")
    return predictions


def _split_label_ids(label_ids, n_tasks: int) -> list:
    """Label arrays in task order: a tuple/list of arrays, or a single array when there is one task."""
    if isinstance(label_ids, Mapping):
        return list(label_ids.values())
    if isinstance(label_ids, (tuple, list)):
        arrays = list(label_ids)
    else:
        arrays = [label_ids]
    if len(arrays) != n_tasks:
        raise ValueError(f"compute_metrics got {len(arrays)} label arrays for {n_tasks} tasks; set the Trainer's "
                         f"label_names to [labels_<task> for every task] in task order")
    return arrays


def resolve_primary_metrics(tasks: list[dict], primary_metrics: Mapping[str, str] | None = None) -> dict[str, str]:
    """Primary metric per task name: `primary_metrics[name]`, else `primary_metrics[type]`, else the default."""
    given = dict(primary_metrics or {})
    known = {t["name"] for t in tasks} | set(TASK_TYPES)
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"primary metric given for unknown task/type {unknown}; allowed: {', '.join(sorted(known))}")
    chosen = {t["name"]: given.get(t["name"], given.get(t["type"], DEFAULT_PRIMARY_METRICS[t["type"]])) for t in tasks}
    for task in tasks:
        allowed = PRIMARY_CHOICES[task["type"]]
        if chosen[task["name"]] not in allowed:
            raise ValueError(f"primary metric {chosen[task['name']]!r} for {task['type']} task {task['name']!r} "
                             f"is not allowed; allowed: {', '.join(allowed)}")
    return chosen


def summary_score(reports: Mapping[str, dict], primary: Mapping[str, str], fitted: bool = True) -> float | None:
    """Mean over tasks of each task's primary metric, over the tasks where it is defined (None if none is)."""
    values = [flat_task_metrics(reports[name], fitted).get(metric) for name, metric in primary.items()]
    return _mean_defined(values)


def build_compute_metrics(tasks: list[dict], primary_metrics: Mapping[str, str] | None = None, thresholds=None,
                          temperatures=None, n_bins: int = DEFAULT_N_BINS
                          ) -> Callable[[object], dict[str, float]]:
    """`compute_metrics` for the Trainer: flat `{task}_{metric}` finite floats plus `score`.

    `tasks` must be in the order of the Trainer's label_names. Thresholds (`{task: {label: t}}`) and temperatures
    (`{task: T}`) are used when given (0.5 and T = 1 otherwise). Undefined metrics are left out; `score` is the
    mean of each task's primary metric (defaults: multiclass/multilabel macro_f1, binary f1, regression mean CCC).
    """
    tasks = [dict(t) for t in tasks]
    primary = resolve_primary_metrics(tasks, primary_metrics)
    metrics = {t["name"]: TaskMetric(config_name=t["type"], keep_in_memory=True) for t in tasks}
    thresholds, temperatures = dict(thresholds or {}), dict(temperatures or {})

    def compute_metrics(eval_pred) -> dict[str, float]:
        predictions = _unwrap_predictions(eval_pred.predictions)
        label_arrays = _split_label_ids(eval_pred.label_ids, len(tasks))
        reports, flat = {}, {}
        for task, labels in zip(tasks, label_arrays):
            name = task["name"]
            if name not in predictions:
                raise ValueError(f"predictions hold no logits for task {name!r}; got {sorted(predictions)}")
            reports[name] = metrics[name].compute(
                predictions=np.asarray(predictions[name]), references=np.asarray(labels), task=task,
                thresholds=thresholds.get(name), temperature=temperatures.get(name), n_bins=n_bins)
            flat.update({f"{name}_{k}": v for k, v in flat_task_metrics(reports[name]).items()})
        score = summary_score(reports, primary)
        if score is not None:
            flat["score"] = score
        joint = joint_accuracy(tasks, predictions, dict(zip([t["name"] for t in tasks], label_arrays)), thresholds,
                               temperatures)
        if joint is not None and joint["accuracy"] is not None:
            flat["joint_accuracy"] = joint["accuracy"]
        return flat

    return compute_metrics


def _f1_over_columns(truth: np.ndarray, predicted: np.ndarray, labelled: np.ndarray) -> float | None:
    """Mean F1 over the columns where it is defined, from boolean (N, K) truth and predictions."""
    tp = (truth & predicted & labelled).sum(axis=0).astype(float)
    fp = (~truth & predicted & labelled).sum(axis=0).astype(float)
    fn = (truth & ~predicted & labelled).sum(axis=0).astype(float)
    return _mean_defined([_prf(*counts)[2] for counts in zip(tp, fp, fn)])


def primary_score(task: dict, logits: np.ndarray, labels: np.ndarray, metric: str | None = None) -> float | None:
    """One task's primary metric at T = 1 and threshold 0.5, computed directly (the greedy ensemble selection
    asks for thousands); equal to `flat_task_metrics(compute_task_report(...), fitted=False)[metric]`."""
    metric = metric or DEFAULT_PRIMARY_METRICS[task["type"]]
    if metric != DEFAULT_PRIMARY_METRICS[task["type"]]:
        return flat_task_metrics(compute_task_report(task, logits, labels), fitted=False).get(metric)
    labels = np.asarray(labels)
    if task["type"] == "regression":
        values = np.asarray(logits, dtype=np.float64).reshape(len(labels), -1)
        labels = labels.astype(np.float64).reshape(len(values), -1)
        mask = ~np.isnan(labels)
        return _mean_defined([_ccc(labels[mask[:, k], k], values[mask[:, k], k]) if mask[:, k].any() else None
                              for k in range(values.shape[1])])
    if task["type"] == "multiclass":
        classes = len(task["labels"])
        rows = labels != IGNORE_INDEX
        truth = np.eye(classes, dtype=bool)[labels[rows].astype(int)]
        predicted = np.eye(classes, dtype=bool)[np.asarray(logits)[rows].argmax(axis=1)]
        return _f1_over_columns(truth, predicted, np.ones_like(truth))
    values = np.asarray(logits, dtype=np.float64).reshape(len(labels), -1)
    labels = labels.astype(np.float64).reshape(len(values), -1)
    return _f1_over_columns(labels == 1, values >= 0.0, labelled_entries(labels))  # p >= 0.5 <=> logit >= 0
