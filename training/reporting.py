"""Evaluation reports: one nested report for all tasks, metrics.json, report.md and PNG plots.

Plots are drawn on `matplotlib.figure.Figure` objects with the Agg canvas (`FigureCanvasAgg`) explicitly, so no
display is needed and pyplot's global state (and its backend choice) is never touched.
Files written by `write_reports` into the output folder: `metrics.json`, `report.md` and `plots/*.png`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from inference.io import write_text_atomic
from training.joint_metrics import joint_accuracy
from training.metrics import compute_task_report, resolve_primary_metrics, summary_score

MAX_SCATTER_POINTS = 5000


def build_report(tasks: list[dict], logits: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
                 thresholds: Mapping | None = None, temperatures: Mapping | None = None,
                 primary_metrics: Mapping[str, str] | None = None, split: str = "test",
                 calibration: dict | None = None) -> dict:
    """Report of every task on one split: `tasks`, `score` (fitted thresholds) and `score_at_0.5`.

    `calibration` (what was fitted, on which split) is stored as given.
    """
    thresholds, temperatures = dict(thresholds or {}), dict(temperatures or {})
    primary = resolve_primary_metrics(tasks, primary_metrics)
    reports = {t["name"]: compute_task_report(t, logits[t["name"]], labels[t["name"]], thresholds.get(t["name"]),
                                              temperatures.get(t["name"])) for t in tasks}
    n_rows = len(next(iter(labels.values()))) if labels else 0
    report = {"split": split, "n_rows": int(n_rows), "primary_metrics": primary,
              "score": summary_score(reports, primary), "score_at_0.5": summary_score(reports, primary, fitted=False),
              "tasks": reports}
    joint = joint_accuracy(tasks, logits, labels, thresholds, temperatures)
    if joint is not None:
        report["joint"] = joint
    if calibration is not None:
        report["calibration"] = calibration
    return report


def to_jsonable(value):
    """Plain JSON types: numpy scalars/arrays converted, non-finite floats become None (never NaN in JSON)."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def write_json_atomic(path: str | Path, data) -> Path:
    """Write JSON (NaN-free, see `to_jsonable`) through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(value)
    return f"{float(value):.4f}"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) if isinstance(c, str) else _fmt(c) for c in row) + " |" for row in rows]
    return lines


def _calibration_lines(task: dict) -> list[str]:
    cal = task["calibration"]
    return ["", f"Temperature {cal['temperature']:.4f}; ECE ({cal['n_bins']} bins) {_fmt(cal['ece_before'])} "
                f"before, {_fmt(cal['ece_after'])} after scaling; NLL {_fmt(cal['nll_before'])} before, "
                f"{_fmt(cal['nll_after'])} after."]


def _multiclass_md(task: dict) -> list[str]:
    m = task["metrics"]
    lines = _table(["metric", "value"], [[k, m[k]] for k in ("accuracy", "macro_f1", "weighted_f1", "roc_auc")])
    lines += _calibration_lines(task) + [""]
    rows = [[name, c["support"], c["precision"], c["recall"], c["f1"], c["roc_auc"]]
            for name, c in task["per_class"].items()]
    return lines + _table(["class", "support", "precision", "recall", "F1", "ROC-AUC"], rows)


def _thresholded_md(task: dict) -> list[str]:
    at05, fitted = task["at_0.5"], task.get("at_fitted")
    keys = [k for k, v in at05.items() if not isinstance(v, list)]
    rows = [[k, at05[k], fitted[k] if fitted else "not fitted"] for k in keys]
    rows.append(["roc_auc", task["metrics"]["roc_auc"], "(threshold-free)"])
    lines = _table(["metric", "at 0.5", "at fitted thresholds"], rows) + _calibration_lines(task)
    if task["type"] == "multilabel":
        rows = [[name, task["thresholds"][name], entry["support"], entry["at_0.5"]["f1"],
                 entry["at_fitted"]["f1"] if "at_fitted" in entry else "not fitted", entry["roc_auc"]]
                for name, entry in task["per_label"].items()]
        lines += [""] + _table(["label", "threshold", "support", "F1 at 0.5", "F1 at fitted", "ROC-AUC"], rows)
    else:
        lines += ["", f"Threshold for {task['positive_label']!r}: {task['thresholds'][task['positive_label']]:.4f}"]
    return lines


def _regression_md(task: dict) -> list[str]:
    metrics = ["mse", "mae", "r2", "pearson", "spearman", "ccc"]
    rows = [[name, out["n"], *[out[m] for m in metrics]] for name, out in task["outputs"].items()]
    rows.append(["mean", "", *[task["metrics"][m] for m in metrics]])
    return _table(["output", "n", "MSE", "MAE", "R²", "Pearson", "Spearman", "CCC"], rows)


def render_markdown(report: dict, plots: Mapping[str, Path] | None = None, root: Path | None = None) -> str:
    """report.md: the summary score, then a table per task, its plots and the reasons for undefined values."""
    primary = ", ".join(f"{t} {m}" for t, m in report["primary_metrics"].items())
    lines = ["# Evaluation report", "",
             f"Split `{report['split']}` ({report['n_rows']} rows). Score (mean of primary metrics: {primary}): "
             f"{_fmt(report['score'])} at fitted thresholds, {_fmt(report['score_at_0.5'])} at 0.5."]
    if "calibration" in report:
        lines += ["", f"Thresholds and temperatures were fitted on split `{report['calibration'].get('split')}`, "
                      "which did not select the checkpoint."]
    if report.get("joint"):
        joint = report["joint"]
        lines += ["", f"All classification tasks right at once ({', '.join(joint['tasks'])}): "
                      f"{_fmt(joint['accuracy'])} of the {joint['n']} rows labelled for all of them."]
    render = {"multiclass": _multiclass_md, "multilabel": _thresholded_md, "binary": _thresholded_md,
              "regression": _regression_md}
    for name, task in report["tasks"].items():
        lines += ["", f"## {name} ({task['type']}, {task['n']} labelled rows)", ""] + render[task["type"]](task)
        for key, path in (plots or {}).items():
            if key.endswith(f":{name}"):
                rel = path.relative_to(root) if root else path
                lines += ["", f"![{key}]({rel.as_posix()})"]
        if task["undefined"]:
            lines += ["", "<details><summary>Undefined values</summary>", ""]
            lines += [f"- `{k}`: {v}" for k, v in task["undefined"].items()] + ["", "</details>"]
    for key, title in (("loss_curves", "Loss curves"), ("task_weights", "Task weights over training")):
        if plots and key in plots:
            rel = plots[key].relative_to(root) if root else plots[key]
            lines += ["", f"## {title}", "", f"![{key}]({rel.as_posix()})"]
    return "\n".join(lines) + "\n"


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    return path


def _loss_series(log_history: list[dict]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """{panel: {"train"|"validation": [(x, loss)]}} from Trainer log entries; panel "total" or a task name."""
    series: dict = {}
    for i, entry in enumerate(log_history or []):
        x = entry.get("step", entry.get("epoch", i))
        for key, value in entry.items():
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            split, rest = ("validation", key[len("eval_"):]) if key.startswith("eval_") else ("train", key)
            if rest == "loss":
                panel = "total"
            elif rest.startswith("loss_"):
                panel = rest[len("loss_"):]
            else:
                continue
            series.setdefault(panel, {}).setdefault(split, []).append((float(x), float(value)))
    return series


def plot_loss_curves(log_history: list[dict], path: Path) -> Path | None:
    """One panel for the total loss and one per task, train and validation; None when the history has no loss."""
    series = _loss_series(log_history)
    if not series:
        return None
    panels = ["total"] * ("total" in series) + sorted(p for p in series if p != "total")
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(4.5 * ncols, 3.5 * nrows))
    for k, panel in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        for split, style in (("train", ".-"), ("validation", "o-")):
            points = series[panel].get(split)
            if points:
                ax.plot(*zip(*points), style, label=split, markersize=3)
        ax.set_title(f"loss: {panel}")
        ax.set_xlabel("step")
        ax.legend()
    return _save(fig, path)


def plot_task_weights(log_history: list[dict], path: Path) -> Path | None:
    """Each task's loss weight at every logging step (changing under uncertainty, inverse_variance, dwa or a
    curriculum); None when the weights never changed."""
    weights: dict[str, list[tuple[float, float]]] = {}
    for entry in log_history:
        for key, value in entry.items():
            if key.startswith("weight_") and "step" in entry:
                weights.setdefault(key[len("weight_"):], []).append((entry["step"], value))
    if not any(len({v for _, v in points}) > 1 for points in weights.values()):
        return None
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot(1, 1, 1)
    for name, points in sorted(weights.items()):
        ax.plot(*zip(*points), ".-", label=name, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss weight")
    ax.legend()
    return _save(fig, path)


def plot_confusion_matrix(task: dict, path: Path) -> Path:
    """Counts, coloured by the row-normalised rate (rows = true class)."""
    cm = np.asarray(task["confusion_matrix"], dtype=float)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(task["labels"]) + 2)
    fig = Figure(figsize=(size, size))
    ax = fig.add_subplot()
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(task["labels"]))
    ax.set_xticks(ticks, task["labels"], rotation=90)
    ax.set_yticks(ticks, task["labels"])
    if len(task["labels"]) <= 30:
        for (i, j), count in np.ndenumerate(cm):
            ax.text(j, i, int(count), ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{task['name']}: confusion matrix")
    return _save(fig, path)


def plot_label_f1(task: dict, path: Path) -> Path:
    """Per-label F1 bars at 0.5 and at the fitted thresholds (missing bars = undefined F1)."""
    names = list(task["per_label"])
    x = np.arange(len(names))
    fig = Figure(figsize=(max(5.0, 0.35 * len(names) + 2), 4))
    ax = fig.add_subplot()
    tags = ["at_0.5"] + ["at_fitted"] * ("at_fitted" in task)
    width = 0.8 / len(tags)
    for k, tag in enumerate(tags):
        values = [task["per_label"][n][tag]["f1"] for n in names]
        heights = [np.nan if v is None else v for v in values]
        ax.bar(x + (k - (len(tags) - 1) / 2) * width, heights, width, label=tag.replace("_", " "))
    ax.set_xticks(x, names, rotation=90)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.set_title(f"{task['name']}: F1 per label")
    ax.legend()
    return _save(fig, path)


def plot_reliability(task: dict, path: Path) -> Path:
    """Reliability diagram before and after temperature scaling, with the ECE of each."""
    cal = task["calibration"]
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    for tag, style in (("before", "s-"), ("after", "o-")):
        bins = cal[f"reliability_{tag}"]
        points = [(c, a) for c, a in zip(bins["confidence"], bins["accuracy"]) if c is not None]
        if points:
            ax.plot(*zip(*points), style, label=f"{tag} (ECE {_fmt(cal[f'ece_{tag}'])})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence" if task["type"] == "multiclass" else "predicted probability")
    ax.set_ylabel("accuracy" if task["type"] == "multiclass" else "fraction positive")
    ax.set_title(f"{task['name']}: reliability (T={cal['temperature']:.3g})")
    ax.legend(loc="upper left")
    return _save(fig, path)


def plot_regression_scatter(task: dict, predictions: np.ndarray, labels: np.ndarray, path: Path) -> Path:
    """Predicted vs. true per output (labelled rows only, at most MAX_SCATTER_POINTS), with the identity line."""
    names = list(task["labels"])
    preds = np.asarray(predictions, dtype=float).reshape(len(predictions), -1)
    truth = np.asarray(labels, dtype=float).reshape(len(labels), -1)
    fig = Figure(figsize=(4 * len(names), 4))
    rng = np.random.default_rng(0)
    for k, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), k + 1)
        rows = np.flatnonzero(~np.isnan(truth[:, k]) & np.isfinite(preds[:, k]))
        if rows.size > MAX_SCATTER_POINTS:
            rows = rng.choice(rows, MAX_SCATTER_POINTS, replace=False)
        ax.scatter(truth[rows, k], preds[rows, k], s=6, alpha=0.5)
        if rows.size:
            lo = float(min(truth[rows, k].min(), preds[rows, k].min()))
            hi = float(max(truth[rows, k].max(), preds[rows, k].max()))
            ax.plot([lo, hi], [lo, hi], "--", color="grey")
        out = task["outputs"][name]
        ax.set_title(f"{task['name']}.{name}: CCC {_fmt(out['ccc'])}, r {_fmt(out['pearson'])}")
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
    return _save(fig, path)


def write_plots(output_dir: Path, report: dict, log_history: list[dict] | None = None,
                predictions: Mapping[str, np.ndarray] | None = None,
                labels: Mapping[str, np.ndarray] | None = None) -> dict[str, Path]:
    """Every plot that the report and arrays allow; keys like `loss_curves` or `reliability:<task>`."""
    plots_dir = Path(output_dir) / "plots"
    plots: dict[str, Path] = {}
    loss = plot_loss_curves(log_history or [], plots_dir / "loss_curves.png")
    if loss is not None:
        plots["loss_curves"] = loss
    weights = plot_task_weights(log_history or [], plots_dir / "task_weights.png")
    if weights is not None:
        plots["task_weights"] = weights
    for name, task in report["tasks"].items():
        if task["type"] == "multiclass":
            plots[f"confusion_matrix:{name}"] = plot_confusion_matrix(task, plots_dir / f"confusion_matrix_{name}.png")
        if task["type"] == "multilabel":
            plots[f"f1_per_label:{name}"] = plot_label_f1(task, plots_dir / f"f1_per_label_{name}.png")
        if task["type"] != "regression":
            plots[f"reliability:{name}"] = plot_reliability(task, plots_dir / f"reliability_{name}.png")
        elif predictions is not None and labels is not None and name in predictions and name in labels:
            plots[f"scatter:{name}"] = plot_regression_scatter(task, predictions[name], labels[name],
                                                               plots_dir / f"scatter_{name}.png")
    return plots


def write_reports(output_dir: str | Path, report: dict, log_history: list[dict] | None = None,
                  predictions: Mapping[str, np.ndarray] | None = None,
                  labels: Mapping[str, np.ndarray] | None = None) -> dict[str, Path]:
    """Write metrics.json (the report and the log history), report.md and plots; returns {name: path}.

    `predictions` / `labels` (`{task: array}` of the report's split) are needed only for regression scatter plots.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    files = write_plots(output_dir, report, log_history, predictions, labels)
    files["metrics.json"] = write_json_atomic(output_dir / "metrics.json",
                                              {**report, "log_history": list(log_history or [])})
    markdown = render_markdown(report, files, output_dir)
    md_path = output_dir / "report.md"
    write_text_atomic(md_path, markdown)
    files["report.md"] = md_path
    return files
