"""Evaluation glue: model predictions over a tokenized dataset, calibration on a held-out split, full report.

Protocol (DESIGN.md, "thresholds tuned on the split that picks the checkpoint give optimistic numbers"):
- the validation split is halved with a fixed seed into `select` (the Trainer's eval set: checkpoint selection and
  early stopping) and `calibrate` (only to fit temperatures and thresholds), unless a calibration split is given;
- temperatures are fitted first (NLL), then thresholds on the temperature-scaled probabilities (F1), and both are
  stored in `model.config.temperatures` / `model.config.thresholds`;
- the report is computed on the test split, at 0.5 and at the fitted thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import datasets
import numpy as np
import torch
from torch.utils.data import DataLoader

from data.collator import MODEL_INPUTS, POOLED_INPUT
from modeling.task_schema import CLASSIFICATION_TYPES, label_key, missing_labels
from training.calibration import fit_task_calibration
from training.reporting import build_report, write_reports

DEFAULT_CALIBRATION_SEED = 42


def split_for_calibration(dataset: datasets.Dataset, seed: int = DEFAULT_CALIBRATION_SEED,
                          fraction: float = 0.5) -> tuple[datasets.Dataset, datasets.Dataset]:
    """(select, calibrate): a seeded random split of `dataset`; `fraction` of the rows go to `calibrate`."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"calibration fraction must be in (0, 1), got {fraction}")
    if len(dataset) < 2:
        raise ValueError(f"cannot split a validation set of {len(dataset)} row(s) into select and calibrate halves; "
                         "give a larger validation split or a calibration file")
    parts = dataset.train_test_split(test_size=fraction, seed=seed, shuffle=True)
    return parts["train"], parts["test"]


def select_and_calibrate(splits: Mapping[str, datasets.Dataset], seed: int = DEFAULT_CALIBRATION_SEED
                         ) -> tuple[datasets.Dataset | None, datasets.Dataset | None]:
    """The Trainer's eval set and the calibration set from a DatasetDict.

    With a `calibration` split: (validation, calibration). Otherwise the validation split halved
    (`split_for_calibration`). Without a validation split: (None, calibration or None).
    """
    validation, calibration = splits.get("validation"), splits.get("calibration")
    if calibration is not None or validation is None:
        return validation, calibration
    return split_for_calibration(validation, seed)


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def collect_predictions(model, dataset: datasets.Dataset, collator, batch_size: int = 32
                        ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """({task: logits}, {task: labels}) over `dataset` in eval mode; labels absent from the data are all-missing.

    Logits follow the contract (regression: predictions in the user's units).
    """
    tasks = list(model.config.tasks)
    if len(dataset) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    was_training = model.training
    model.eval()
    device = _model_device(model)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collator)
    logits: dict[str, list[np.ndarray]] = {t["name"]: [] for t in tasks}
    labels: dict[str, list[np.ndarray]] = {t["name"]: [] for t in tasks}
    try:
        for batch in loader:
            inputs = {k: v.to(device) for k, v in batch.items() if k in (*MODEL_INPUTS, POOLED_INPUT)}
            output = model(**inputs)
            n = next(iter(inputs.values())).shape[0]
            for task in tasks:
                name = task["name"]
                logits[name].append(output.logits[name].float().cpu().numpy())
                key = label_key(name)
                labels[name].append(batch[key].numpy() if key in batch else missing_labels(task, n))
    finally:
        model.train(was_training)
    return ({k: np.concatenate(v) for k, v in logits.items()}, {k: np.concatenate(v) for k, v in labels.items()})


def fit_calibration(tasks: Sequence[dict], logits: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
                    split: str = "calibrate") -> dict:
    """Temperatures and thresholds of every classification task, with NLL/ECE before and after (as a report part)."""
    fitted = {t["name"]: fit_task_calibration(t, logits[t["name"]], labels[t["name"]])
              for t in tasks if t["type"] in CLASSIFICATION_TYPES}
    n_rows = len(next(iter(labels.values()))) if labels else 0
    return {"split": split, "n_rows": int(n_rows), "tasks": fitted}


def calibration_values(calibration: Mapping) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """(thresholds `{task: {label: t}}`, temperatures `{task: T}`) out of a `fit_calibration` result."""
    tasks = calibration["tasks"]
    thresholds = {name: dict(entry["thresholds"]) for name, entry in tasks.items() if "thresholds" in entry}
    temperatures = {name: float(entry["temperature"]) for name, entry in tasks.items()}
    return thresholds, temperatures


def apply_calibration(config, calibration: Mapping) -> None:
    """Store the fitted thresholds and temperatures in a MultiTaskConfig (validated by the config's own checks)."""
    config.thresholds, config.temperatures = calibration_values(calibration)
    check = getattr(config, "check_multitask_fields", None)
    if check is not None:
        check()


def calibrate_model(model, dataset: datasets.Dataset, collator, batch_size: int = 32,
                    split: str = "calibrate") -> dict:
    """Fit temperatures and thresholds on `dataset` (never the split that chose the checkpoint) into the config."""
    logits, labels = collect_predictions(model, dataset, collator, batch_size)
    calibration = fit_calibration(model.config.tasks, logits, labels, split)
    apply_calibration(model.config, calibration)
    return calibration


def evaluate_split(model, dataset: datasets.Dataset, collator, batch_size: int = 32, split: str = "test",
                   primary_metrics: Mapping[str, str] | None = None, calibration: dict | None = None
                   ) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(report, logits, labels) on `dataset` with the thresholds/temperatures stored in the model's config."""
    logits, labels = collect_predictions(model, dataset, collator, batch_size)
    report = build_report(list(model.config.tasks), logits, labels, model.config.thresholds or None,
                          model.config.temperatures or None, primary_metrics, split, calibration)
    return report, logits, labels


def run_evaluation(model, test_dataset: datasets.Dataset, collator, output_dir: str | Path,
                   calibrate_dataset: datasets.Dataset | None = None, log_history: list[dict] | None = None,
                   batch_size: int = 32, primary_metrics: Mapping[str, str] | None = None,
                   split: str = "test") -> dict:
    """Calibrate on `calibrate_dataset` (when given), report on `test_dataset`, write metrics.json/report.md/plots."""
    calibration = None
    if calibrate_dataset is not None:
        calibration = calibrate_model(model, calibrate_dataset, collator, batch_size)
    report, logits, labels = evaluate_split(model, test_dataset, collator, batch_size, split, primary_metrics,
                                            calibration)
    write_reports(output_dir, report, log_history, logits, labels)
    return report


def default_label_columns(task: dict, columns: Sequence[str]) -> list[str] | None:
    """Columns holding `task`'s labels in a file, from names alone; None when the file has none of them.

    multiclass/binary: the column named like the task; multilabel: that column (a list of names) or one 0/1
    column per label name; regression: one column per output name (or the task name for a single output).
    """
    present = set(columns)
    name, labels = task["name"], list(task["labels"])
    if task["type"] in ("multiclass", "binary"):
        candidates = [[name]]
    elif task["type"] == "multilabel":
        candidates = [[name], labels]
    else:
        candidates = [labels, [name]] if len(labels) == 1 else [labels]
    for cols in candidates:
        if all(c in present for c in cols):
            return cols
    partial = [c for cols in candidates for c in cols if c in present]
    if partial:
        raise ValueError(f"task {task['name']!r}: the file has only some of its columns {candidates[0]} "
                         f"(found {partial}); give all of them or map them with --column {name}=COL[,COL...]")
    return None


def read_labelled_file(path: str, tasks: Sequence[dict], text_column: str = "text",
                       columns: Mapping[str, list[str]] | None = None) -> tuple[datasets.Dataset, list[str]]:
    """Read and validate an evaluation file with the data package: (dataset with `text` and labels, notes).

    `columns` maps a task to its column(s); other tasks use `default_label_columns`. A task whose columns the
    file lacks is evaluated as unlabelled (noted); a file with no label column for any task is an error.
    """
    from data.labels import encode_task
    from data.loading import read_source
    from data.pipeline import SplitRows, rows_to_dataset
    from data.sources import Source
    from data.validation import check_texts, require_columns

    source = Source(path=str(path), text_column=text_column)
    frame = read_source(source).reset_index(drop=True)
    require_columns(frame, [text_column], source.origin, "text", "set --text-column")
    check_texts(frame[text_column], source.origin, text_column)
    columns, notes, labels = dict(columns or {}), [], {}
    unknown = sorted(set(columns) - {t["name"] for t in tasks})
    if unknown:
        raise ValueError(f"--column given for unknown task(s) {unknown}; tasks: {[t['name'] for t in tasks]}")
    for task in tasks:
        cols = columns.get(task["name"]) or default_label_columns(task, list(frame.columns))
        if cols is None:
            notes.append(f"task {task['name']!r}: no label column in {path}; evaluated as unlabelled")
            labels[task["name"]] = missing_labels(task, len(frame))
            continue
        require_columns(frame, cols, source.origin, f"label (task {task['name']!r})", "use --column TASK=COL")
        labels[task["name"]] = encode_task(task, frame, cols, source.origin)
    if len(notes) == len(tasks):
        raise ValueError(f"{path}: no label column for any task ({', '.join(t['name'] for t in tasks)}); "
                         f"file columns: {', '.join(map(str, frame.columns))}")
    return rows_to_dataset(SplitRows(frame[text_column].astype(str).tolist(), labels), list(tasks)), notes


def tokenize_dataset(dataset: datasets.Dataset, tokenizer, max_length: int) -> datasets.Dataset:
    """Token ids (no padding: the collator pads per batch) next to the label columns; `text` dropped."""
    from data.tokenization import tokenize_texts

    ids = tokenize_texts(dataset["text"], tokenizer, max_length, cache_dir=None)
    return datasets.concatenate_datasets([ids, dataset.remove_columns(["text"])], axis=1)
