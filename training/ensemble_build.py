"""Members in, one ensemble folder out: training or reusing members, fitting weights, calibrating, reporting.

The steps are named functions so that tests and other scripts can call them one by one; `run_ensemble` chains
them the way train_ensemble.py does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from data.collator import MultiTaskCollator
from inference.io import write_text_atomic
from modeling.serving import SavedModelError, check_saved_folder
from training.ensemble import ensemble_logits, selection_weights
from training.ensemble_run import (
    EnsembleArguments,
    HeldOut,
    cached_predictions,
    check_members,
    check_tokenizers,
    fit_ensemble_calibration,
    flags_to_argv,
    fold_assignment,
    held_out_parts,
    member_specs,
    without_fold,
)
from training.evaluation import apply_calibration, calibration_values, collect_predictions
from training.metrics import flat_task_metrics, resolve_primary_metrics
from training.outputs import publish, staging_folder
from training.recipe import parse_arguments
from training.reporting import build_report, write_json_atomic, write_reports
from training.run import evaluate_and_save, fit, prepare, run_arguments

logger = logging.getLogger(__name__)


def train_member(argv: list[str], folder: Path, fold: tuple[np.ndarray, int] | None = None) -> Path:
    """Train one member through train_enhanced.py's steps into `folder`; a complete folder made from the same
    flags (and fold) is reused, so an interrupted ensemble run continues where it stopped."""
    record = {"argv": argv, "fold": None if fold is None else int(fold[1])}
    if (folder / "member.json").is_file() and json.loads((folder / "member.json").read_text()) == record:
        try:
            check_saved_folder(folder)
            logger.info("member %s: complete, reused", folder.name)
            return folder
        except SavedModelError:
            pass
    logger.info("member %s: training", folder.name)
    model_args, data_args, args = parse_arguments(argv)
    setup = prepare(model_args, data_args, args)
    if fold is not None:
        setup = replace(setup, data=without_fold(setup.data, *fold))
    trainer, evaluation = fit(model_args, args, setup)
    evaluate_and_save(trainer, setup, evaluation, run_arguments(model_args, data_args, args))
    write_text_atomic(folder / "member.json", json.dumps(record))
    return folder


def train_members(specs: list[dict] | None, shared: list[str], output_dir: Path, split_seed: int,
                  fold: np.ndarray | None, folds: int = 0) -> list[Path]:
    """Every member's folder (trained now or reused), sharing the data split of the ensemble."""
    pinned = ["--split-seed", str(split_seed)]
    if fold is not None:  # cross-validation: a fixed budget, so the left-out fold stays out of every choice
        plans = [(f"fold-{k}", ["--eval-strategy", "no", "--load-best-model-at-end", "false"], (fold, k))
                 for k in range(folds)]
    else:
        plans = [(f"member-{i}", flags_to_argv(spec), None) for i, spec in enumerate(specs)]
    folders = []
    for name, extra, member_fold in plans:
        folder = output_dir / "members" / name
        argv = [*shared, *extra, *pinned, "--output-dir", str(folder)]
        folders.append(train_member(argv, folder, member_fold))
    return folders


def fitted_weights(ens: EnsembleArguments, tasks: list[dict], predictions: list[dict], seed: int) -> dict:
    """Per task: the bagged greedy selection on the weights rows, or equal weights."""
    labels = predictions[0]["weights"][1]
    weights = {}
    for task in tasks:
        name = task["name"]
        if ens.selection == "average":
            weights[name] = [1.0 / len(predictions)] * len(predictions)
            continue
        weights[name] = selection_weights(task, [p["weights"][0][name] for p in predictions], labels[name],
                                          ens.selection_rounds, ens.bagging_rounds, seed)
        logger.info("weights of %s: %s", name, [round(w, 3) for w in weights[name]])
    return weights


def combined(tasks: list[dict], predictions: list[dict], part: str, weights: dict) -> dict[str, np.ndarray]:
    return {t["name"]: ensemble_logits(t, [p[part][0][t["name"]] for p in predictions], weights[t["name"]])
            for t in tasks}


def score_on_test(tasks, logits, labels, thresholds, temperatures) -> dict[str, Any]:
    """Score and each task's primary metric on test, at the given thresholds and temperatures."""
    report = build_report(tasks, logits, labels, thresholds, temperatures, split="test")
    primary = resolve_primary_metrics(tasks)
    return {"score": report["score"], **{name: flat_task_metrics(report["tasks"][name]).get(metric)
                                         for name, metric in primary.items()}}


def comparison(tasks, predictions, members, weights) -> dict[str, dict]:
    """Members (with their own calibration), the plain average and the ensemble (each calibrated on the
    calibration rows), side by side on test."""
    test_labels, calibrate_labels = predictions[0]["test"][1], predictions[0]["calibrate"][1]
    rows = {}
    for name, member, pred in zip(members["names"], members["configs"], predictions):
        rows[name] = score_on_test(tasks, pred["test"][0], test_labels, member.get("thresholds"),
                                   member.get("temperatures"))
    for label, task_weights in (("plain average", {t["name"]: [1.0] * len(predictions) for t in tasks}),
                                ("ensemble", weights)):
        calibration = fit_ensemble_calibration(tasks, combined(tasks, predictions, "calibrate", task_weights),
                                               calibrate_labels)
        thresholds, temperatures = calibration_values(calibration)
        rows[label] = score_on_test(tasks, combined(tasks, predictions, "test", task_weights), test_labels,
                                    thresholds, temperatures)
    return rows


def comparison_markdown(rows: dict[str, dict], weights: dict, names: list[str]) -> str:
    """The members / average / ensemble table on test and the fitted weights, as Markdown."""
    columns = [c for c in next(iter(rows.values())) if c != "score"] + ["score"]
    lines = ["## Test scores (primary metric per task, fitted thresholds)", "",
             "| model | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for model, values in rows.items():
        cells = ["n/a" if values.get(c) is None else f"{values[c]:.4f}" for c in columns]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += ["", "## Weights per task", "", "| task | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {task} | " + " | ".join(f"{w:.3f}" for w in values) + " |" for task, values in weights.items()]
    return "\n".join(lines) + "\n"


def plot_comparison(rows: dict[str, dict], path: Path) -> Path:
    """Grouped bars: per task (and the score), every member, the plain average and the ensemble."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = [c for c in next(iter(rows.values())) if c != "score"] + ["score"]
    figure = Figure(figsize=(max(6.0, 1.6 * len(columns)), 4.0))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    width = 0.8 / len(rows)
    for i, (model, values) in enumerate(rows.items()):
        heights = [values.get(c) or 0.0 for c in columns]
        axes.bar(np.arange(len(columns)) + i * width, heights, width, label=model)
    axes.set_xticks(np.arange(len(columns)) + 0.4 - width / 2, columns)
    axes.set_ylabel("test (primary metric)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def cross_validation_report(folders: list[Path], models: list, setup, fold: np.ndarray) -> dict:
    """Out-of-fold scores: each fold's member on the rows it never saw, then their mean and spread."""
    data = setup.data
    tasks = list(models[0].config.tasks)
    per_fold = []
    for k, model in enumerate(models):
        rows = data.tokenized["train"].with_format(None).select(np.flatnonzero(fold == k))  # never augmented
        logits, labels = collect_predictions(model, rows, data.collator, 64)
        report = build_report(tasks, logits, labels, split=f"fold {k} (out of fold)")
        per_fold.append({"fold": k, "rows": int(len(rows)), "score": report["score"],
                         **{t: flat_task_metrics(r, fitted=False) for t, r in report["tasks"].items()}})
    summary = {}
    for key in ["score", *[t["name"] for t in tasks]]:
        if key == "score":
            values = np.array([f["score"] for f in per_fold if f["score"] is not None])
            summary["score"] = {"mean": float(values.mean()), "std": float(values.std(ddof=1))}
            continue
        metrics = sorted({m for f in per_fold for m in f[key]})
        summary[key] = {m: {"mean": float(np.mean([f[key][m] for f in per_fold if m in f[key]])),
                            "std": float(np.std([f[key][m] for f in per_fold if m in f[key]], ddof=1))}
                        for m in metrics}
    return {"folds": per_fold, "summary": summary}


def build_and_save(folders: list[Path], names: list[str], ens: EnsembleArguments, setup, parts: HeldOut,
                   output_dir: Path, arguments: dict, cv: dict | None = None) -> dict:
    """Load members, fit weights and calibration, report, and save one loadable ensemble folder."""
    from inference.loading import load_model
    from modeling import MultiTaskEnsembleConfig, MultiTaskEnsembleModel

    check_members(folders)
    loaded = [load_model(str(folder), device="cpu") for folder in folders]
    check_tokenizers([item.tokenizer for item in loaded], names)
    tasks = [dict(t) for t in loaded[0].model.config.tasks]
    collator = MultiTaskCollator(loaded[0].tokenizer, tasks)
    predictions = [cached_predictions(folder, item.model, parts, collator) for folder, item in zip(folders, loaded)]
    weights = fitted_weights(ens, tasks, predictions, setup.data.split_seed)
    member_configs = [item.model.config.to_dict() for item in loaded]
    config = MultiTaskEnsembleConfig(members=member_configs, member_names=names, weights=weights, tasks=tasks,
                                     max_length=loaded[0].model.config.max_length,
                                     truncation_side=loaded[0].model.config.truncation_side)
    calibration = fit_ensemble_calibration(tasks, combined(tasks, predictions, "calibrate", weights),
                                           predictions[0]["calibrate"][1])
    apply_calibration(config, calibration)
    model = MultiTaskEnsembleModel(config, members=[item.model for item in loaded]).eval()
    rows = comparison(tasks, predictions, {"names": names, "configs": member_configs}, weights)
    test_logits, test_labels = combined(tasks, predictions, "test", weights), predictions[0]["test"][1]
    report = build_report(tasks, test_logits, test_labels, config.thresholds, config.temperatures, split="test",
                          calibration=calibration)
    staging = staging_folder(output_dir)
    model.save_pretrained(staging)
    loaded[0].tokenizer.save_pretrained(staging)
    write_reports(staging, report, None, test_logits, test_labels)
    summary = {"comparison": rows, "weights": weights, "members": names, "cross_validation": cv, **arguments}
    write_json_atomic(staging / "ensemble.json", summary)
    write_text_atomic(staging / "ensemble.md", comparison_markdown(rows, weights, names))
    plot_comparison(rows, staging / "plots" / "ensemble.png")
    from training.model_card import write_model_card

    write_model_card(staging, config, metrics=report, model_id=output_dir.name)
    publish(staging, output_dir)
    return summary


def run_ensemble(ens: EnsembleArguments, shared: list[str], output_dir: Path) -> dict:
    """The whole of train_ensemble.py: members, held-out rows, weights, calibration, report, one folder."""
    specs = None if ens.from_models or ens.cv_folds else member_specs(ens)  # bad member lists fail first
    if ens.from_models:
        check_members([Path(f) for f in ens.from_models])
    model_args, data_args, args = parse_arguments([*shared, "--output-dir", str(output_dir)])
    setup = prepare(model_args, data_args, args)
    data = setup.data
    fold = None
    if ens.cv_folds:
        first = next((t["name"] for t in data.tasks if t["type"] in ("multiclass", "binary")), None)
        strata = None if first is None else np.asarray(data.train_labels[first]).astype(np.int64)
        fold = fold_assignment(strata, len(data.raw["train"]), ens.cv_folds, data.split_seed)
    parts = held_out_parts(data.tokenized, data.split_seed, cross_validation=fold is not None)
    if ens.from_models:
        folders = [Path(f) for f in ens.from_models]
    else:
        folders = train_members(specs, shared, output_dir, data.split_seed, fold, ens.cv_folds or 0)
    names = [folder.name for folder in folders]
    cv = None
    if fold is not None:
        from inference.loading import load_model

        cv = cross_validation_report(folders, [load_model(str(f), device="cpu").model for f in folders], setup, fold)
    arguments = {"ensemble": {k: v for k, v in vars(ens).items()}, "shared_flags": shared}
    return build_and_save(folders, names, ens, setup, parts, output_dir, arguments, cv)
