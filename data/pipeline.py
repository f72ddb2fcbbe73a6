"""`prepare_data`: flags -> tasks and sources -> validated, encoded rows -> raw and tokenized `DatasetDict`s.

Order: resolve tasks and sources, read every file, validate it (columns, texts, labels) and encode its labels,
split when evaluation files are missing, run the cross-split checks, and only then tokenize.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa

from data.arguments import DataArguments
from data.augmentation import ROW_COLUMN, WordAugmenter, make_train_transform
from data.collator import MultiTaskCollator
from data.demo import demo_source, demo_tasks
from data.labels import check_no_negative_ids, encode_task, infer_labels, raw_tokens
from data.loading import disk_splits, load_hub, read_source
from data.sampling import label_counts, sample_weights
from data.sources import SPLITS, Source, TasksFile, read_tasks_file
from data.splitting import split_indices
from data.tasks import TaskList, TaskSpecError, parse_task_flag
from data.tokenization import default_cache_dir, tokenize_texts, tokenizer_fingerprint
from data.validation import DataValidationError, check_overlap, check_texts, require_columns, warn
from modeling.task_schema import (
    TaskSchemaError,
    find_task,
    is_classification,
    label_key,
    labelled_rows,
    normalize_task,
)

EVAL_SPLITS = ("validation", "test", "calibration")


@dataclass
class SplitRows:
    """Texts and encoded label arrays of one split (labels keyed by task name)."""

    texts: list[str]
    labels: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, idx: np.ndarray) -> SplitRows:
        return SplitRows([self.texts[i] for i in idx], {k: v[idx] for k, v in self.labels.items()})

    @staticmethod
    def concat(parts: list[SplitRows]) -> SplitRows:
        texts = [t for p in parts for t in p.texts]
        return SplitRows(texts, {k: np.concatenate([p.labels[k] for p in parts]) for k in parts[0].labels})


@dataclass
class PreparedData:
    """Everything the trainer needs from the data side. Label arrays are keyed by task name."""

    tasks: list[dict]
    raw: datasets.DatasetDict
    tokenized: datasets.DatasetDict
    collator: MultiTaskCollator
    train_labels: dict[str, np.ndarray]
    warnings: list[str] = field(default_factory=list)
    augmenter: WordAugmenter | None = None
    weighted_sampling: str | None = None
    weighted_sampling_mode: str = "mean"
    max_length: int | None = None
    train_lengths: np.ndarray | None = None
    split_seed: int = 42

    @property
    def task_names(self) -> list[str]:
        return [t["name"] for t in self.tasks]

    @property
    def label_names(self) -> list[str]:
        """Trainer `label_names`, in task order."""
        return [label_key(name) for name in self.task_names]

    def task(self, name: str) -> dict:
        return find_task(self.tasks, name)

    def task_dicts(self) -> list[dict]:
        """Copies of the complete task dicts (regression target_mean / target_std from the training split)."""
        return copy.deepcopy(self.tasks)

    def label_counts(self, task: str) -> np.ndarray:
        """Training-split counts per class / label (see `data.sampling.label_counts`)."""
        return label_counts(self.task(task), self.train_labels[task])

    def sample_weights(self, task: str | None = None, mode: str | None = None) -> np.ndarray:
        """Per training row inverse-frequency weights for `task` (default: --weighted-sampling), mean 1."""
        name = task or self.weighted_sampling
        if name is None:
            raise ValueError("sample_weights: no task given and --weighted-sampling is not set")
        return sample_weights(self.task(name), self.train_labels[name], mode or self.weighted_sampling_mode)


def resolve_tasks(args: DataArguments) -> tuple[TaskList, TasksFile | None]:
    """Tasks from the tasks file and `--task` flags (copies: callers fill labels and statistics)."""
    tasks_file = read_tasks_file(args.tasks_file) if args.tasks_file else None
    tasks = copy.deepcopy(tasks_file.tasks) if tasks_file else TaskList()
    for flag in args.task or []:
        tasks.add(*parse_task_flag(flag), f"--task {flag!r}")
    if not tasks.tasks and args.uses_demo:
        tasks = demo_tasks()
    if not tasks.tasks:
        raise TaskSpecError("no task defined: give --task NAME:TYPE[:COLUMN] or a --tasks-file")
    return tasks, tasks_file


def _cli_source(path: str, args: DataArguments) -> Source:
    return Source(path=path, text_column=args.text_column)


def resolve_sources(args: DataArguments, tasks_file: TasksFile | None) -> dict[str, list[Source]]:
    """Sources per split: tasks-file sources, overridden split by split by the file flags; the demo set by default."""
    sources = {k: list(v) for k, v in (tasks_file.sources if tasks_file else {}).items()}
    flags = {"train": args.train_file or [], "validation": [args.validation_file] if args.validation_file else [],
             "test": [args.test_file] if args.test_file else [],
             "calibration": [args.calibration_file] if args.calibration_file else []}
    for split, paths in flags.items():
        if paths:
            sources[split] = [_cli_source(p, args) for p in paths]
    if not sources.get("train") and not args.dataset_name:
        sources["train"] = [demo_source()]
    train = sources.get("train", [])
    if len(train) == 1:
        for split in disk_splits(train[0].path):
            if split in EVAL_SPLITS and split not in sources:
                sources[split] = [train[0]]
    return sources


Frames = dict[str, list[tuple[Source, pd.DataFrame]]]


def _load_frames(args: DataArguments, sources: dict[str, list[Source]]) -> Frames:
    frames: Frames = {}
    if args.dataset_name:
        for split, frame in load_hub(args.dataset_name, args.dataset_config).items():
            if split in SPLITS and split not in sources:
                frames[split] = [(Source(path=f"{args.dataset_name}[{split}]", text_column=args.text_column), frame)]
    for split, split_sources in sources.items():
        frames[split] = [(src, read_source(src, split)) for src in split_sources]
    if not frames.get("train"):
        raise DataValidationError(f"no training data: --dataset-name {args.dataset_name!r} has no 'train' split")
    return frames


def _text_column(src: Source, tasks_file: TasksFile | None, args: DataArguments) -> str:
    return src.text_column or (tasks_file.text_column if tasks_file else None) or args.text_column


def _check_frame(src: Source, frame: pd.DataFrame, tasks: TaskList, text_col: str,
                 sink: list[str]) -> pd.DataFrame:
    """Column presence and text checks for one source; returns the frame (empty texts dropped when asked)."""
    require_columns(frame, [text_col], src.origin, "text",
                    "set --text-column (or text_column on the source in a tasks file)")
    for name in tasks.names:
        cols = src.task_columns(name, tasks.columns[name])
        if cols:
            require_columns(frame, cols, src.origin, f"label (task {name!r})",
                            "name the column with --task NAME:TYPE:COLUMN or map it under the source's `columns:`")
    if src.drop_empty_text:
        texts = frame[text_col]
        empty = texts.isna() | texts.astype(str).str.strip().eq("")
        if empty.any():
            warn(f"{src.origin}: dropped {int(empty.sum())} row(s) with empty text (drop_empty_text)", sink)
            frame = frame[~empty]
    check_texts(frame[text_col], src.origin, text_col)
    return frame


def _infer_missing_labels(tasks: TaskList, train: list[tuple[Source, pd.DataFrame]]) -> None:
    for task in tasks.tasks:
        if task["labels"] is not None:
            continue
        name, tokens = task["name"], set()
        columns: list[str] = list(tasks.columns[name])
        for src, frame in train:
            cols = src.task_columns(name, tasks.columns[name])
            if cols:
                columns = cols
                check_no_negative_ids(task, frame, cols, src.origin)
                tokens |= raw_tokens(task, frame, cols)
        if not tokens and task["type"] in ("multiclass", "multilabel") and len(columns) == 1:
            raise DataValidationError(f"task {name!r}: no labelled row in the training split "
                                      f"({', '.join(src.origin for src, _ in train)}); cannot infer its labels")
        task["labels"] = infer_labels(task, tokens, columns)


def _encode(src: Source, frame: pd.DataFrame, tasks: TaskList, text_col: str) -> SplitRows:
    labels = {t["name"]: encode_task(t, frame, src.task_columns(t["name"], tasks.columns[t["name"]]), src.origin)
              for t in tasks.tasks}
    return SplitRows(frame[text_col].astype(str).tolist(), labels)


def _stratum(tasks: list[dict], rows: SplitRows) -> np.ndarray | None:
    for task in tasks:
        if task["type"] in ("multiclass", "binary"):
            return rows.labels[task["name"]].astype(np.int64)
    return None


def _split(rows: dict[str, SplitRows], tasks: list[dict], args: DataArguments, seed: int) -> dict[str, SplitRows]:
    fractions = {s: getattr(args, f"{s}_split") for s in ("validation", "test") if s not in rows}
    if not any(f > 0 for f in fractions.values()):
        return rows
    train = rows["train"]
    parts = split_indices(train.texts, _stratum(tasks, train), fractions, seed)
    out = dict(rows)
    for name, idx in parts.items():
        out[name] = train.take(idx)
    return out


def _subsample(rows: SplitRows, limit: int | None, seed: int) -> SplitRows:
    if limit is None or limit >= len(rows):
        return rows
    return rows.take(np.sort(np.random.default_rng(seed).choice(len(rows), size=limit, replace=False)))


def _cross_checks(tasks: list[dict], rows: dict[str, SplitRows], train_origins: str, sink: list[str]) -> None:
    train = rows["train"]
    for task in tasks:
        values = train.labels[task["name"]]
        if not labelled_rows(values).any():
            raise DataValidationError(f"task {task['name']!r}: no labelled row in the training split "
                                      f"({train_origins}); map a column to it in at least one training source")
        if is_classification(task):
            counts = label_counts(task, values)
            unseen = [task["labels"][i] for i in np.flatnonzero(counts == 0)]
            if unseen:
                warn(f"task {task['name']!r}: label(s) never seen in training: {', '.join(unseen[:20])}", sink)
    for split in EVAL_SPLITS:
        if split in rows and len(rows[split]):
            check_overlap(train.texts, rows[split].texts, split, sink)


def _regression_stats(tasks: list[dict], train: SplitRows) -> None:
    for task in tasks:
        if task["type"] != "regression":
            continue
        values = train.labels[task["name"]].astype(np.float64)
        counts = (~np.isnan(values)).sum(axis=0)
        with np.errstate(all="ignore"):
            mean = np.where(counts > 0, np.nansum(values, axis=0) / np.maximum(counts, 1), 0.0)
            var = np.nansum((values - mean) ** 2, axis=0) / np.maximum(counts - 1, 1)
        std = np.sqrt(var)
        std = np.where((counts > 1) & (std > 1e-8), std, 1.0)
        task["target_mean"] = task["target_mean"] or [float(x) for x in mean]
        task["target_std"] = task["target_std"] or [float(x) for x in std]


def _complete(tasks: list[dict]) -> list[dict]:
    """Final schema check once labels and regression statistics are known (per-label settings included)."""
    try:
        return [normalize_task(task, where=f"task {task['name']!r}") for task in tasks]
    except TaskSchemaError as err:
        raise TaskSpecError(str(err)) from None


def rows_to_dataset(rows: SplitRows, tasks: list[dict]) -> datasets.Dataset:
    """Arrow-backed dataset with `text` and one `labels_<task>` column per task (fixed-size lists for 2-D labels)."""
    columns = {"text": pa.array(rows.texts, type=pa.string())}
    for task in tasks:
        arr, key = rows.labels[task["name"]], label_key(task["name"])
        if arr.ndim == 2:
            flat = pa.array(np.ascontiguousarray(arr, dtype=np.float32).reshape(-1), type=pa.float32())
            columns[key] = pa.FixedSizeListArray.from_arrays(flat, arr.shape[1])
        else:
            columns[key] = pa.array(arr)
    return datasets.Dataset(datasets.table.InMemoryTable(pa.table(columns)))


def collect_rows(args: DataArguments, tasks: TaskList, tasks_file: TasksFile | None, seed: int,
                 sink: list[str]) -> dict[str, SplitRows]:
    """Read, validate and encode every source; split; subsample; cross-split checks. No tokenization.

    Completes `tasks` in place: inferred label names, regression statistics of the training split.
    """
    frames = _load_frames(args, resolve_sources(args, tasks_file))
    for split, pairs in frames.items():
        frames[split] = [(src, _check_frame(src, frame, tasks, _text_column(src, tasks_file, args), sink))
                         for src, frame in pairs]
    _infer_missing_labels(tasks, frames["train"])
    rows = {split: SplitRows.concat([_encode(src, frame, tasks, _text_column(src, tasks_file, args))
                                     for src, frame in pairs])
            for split, pairs in frames.items()}
    rows = _split(rows, tasks.tasks, args, seed)
    rows["train"] = _subsample(rows["train"], args.max_train_samples, seed)
    for split in EVAL_SPLITS:
        if split in rows:
            rows[split] = _subsample(rows[split], args.max_eval_samples, seed)
    _cross_checks(tasks.tasks, rows, ", ".join(src.origin for src, _ in frames["train"]), sink)
    _regression_stats(tasks.tasks, rows["train"])
    tasks.tasks[:] = _complete(tasks.tasks)
    return rows


def _cache_dir(args: DataArguments) -> Path | None:
    if args.data_cache_dir and args.data_cache_dir.lower() == "none":
        return None
    return Path(args.data_cache_dir) if args.data_cache_dir else default_cache_dir()


def prepare_data(args: DataArguments, tokenizer, seed: int = 42) -> PreparedData:
    """Validated, encoded, split and tokenized data for `tasks` (see the module docstring for the order)."""
    seed = args.split_seed if args.split_seed is not None else seed
    sink: list[str] = []
    task_list, tasks_file = resolve_tasks(args)
    if args.weighted_sampling is not None and args.weighted_sampling not in task_list.names:
        raise DataValidationError(f"--weighted-sampling {args.weighted_sampling!r}: not a task "
                                  f"(tasks: {', '.join(task_list.names)})")
    rows = collect_rows(args, task_list, tasks_file, seed, sink)
    tasks = task_list.tasks
    raw = datasets.DatasetDict({s: rows_to_dataset(rows[s], tasks) for s in ("train", *EVAL_SPLITS) if s in rows})
    augmenter = WordAugmenter(args.word_dropout, args.word_dropout_rate, args.word_swap, seed)
    tokenized, train_lengths = _tokenize(raw, rows, tokenizer, tasks, args, augmenter)
    return PreparedData(tasks=tasks, raw=raw, tokenized=tokenized, collator=MultiTaskCollator(tokenizer, tasks),
                        train_labels=dict(rows["train"].labels), warnings=sink,
                        augmenter=augmenter if augmenter.enabled else None,
                        weighted_sampling=args.weighted_sampling, weighted_sampling_mode=args.weighted_sampling_mode,
                        max_length=args.max_length, train_lengths=train_lengths, split_seed=seed)


def _tokenize(raw: datasets.DatasetDict, rows: dict[str, SplitRows], tokenizer, tasks: list[dict],
              args: DataArguments, augmenter: WordAugmenter) -> tuple[datasets.DatasetDict, np.ndarray]:
    """Token ids of every split (augmented on the fly for training when asked) and the training rows' lengths."""
    if not getattr(tokenizer, "is_fast", False):
        warn(f"{type(tokenizer).__name__} is not a fast tokenizer; tokenization will be slow", None)
    cache_dir, tok_hash = _cache_dir(args), tokenizer_fingerprint(tokenizer)
    out, train_lengths = {}, None
    for split, table in raw.items():
        ids = tokenize_texts(rows[split].texts, tokenizer, args.max_length, cache_dir, tok_hash)
        if split == "train":
            train_lengths = np.array([len(x) for x in ids["input_ids"]])
        if split == "train" and augmenter.enabled:  # the transform re-tokenizes each row's variant on the fly
            keep = table.add_column(ROW_COLUMN, np.arange(len(table)))
        else:
            keep = table.remove_columns(["text"])
        out[split] = datasets.concatenate_datasets([ids, keep], axis=1)
    if augmenter.enabled:
        transform = make_train_transform(tokenizer, [label_key(t["name"]) for t in tasks], augmenter, args.max_length)
        out["train"] = out["train"].with_transform(transform)
    return datasets.DatasetDict(out), train_lengths
