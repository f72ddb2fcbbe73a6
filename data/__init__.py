"""Rows -> tasks -> tensors: loading, validation, label encoding, splitting, augmentation, sampling, collation.

Main entry point: `prepare_data(DataArguments(...), tokenizer)` -> `PreparedData`. Tasks are the dicts of
`modeling.task_schema`; this package adds only where their labels are read from.
"""

from __future__ import annotations

from data.arguments import DataArguments
from data.augmentation import WordAugmenter, make_train_transform
from data.collator import MultiTaskCollator
from data.demo import default_backbone_path, default_demo_args, demo_csv_path, demo_tasks
from data.labels import encode_task
from data.loading import load_hub, read_source
from data.pipeline import PreparedData, collect_rows, prepare_data, resolve_sources, resolve_tasks
from data.sampling import label_counts, sample_weights
from data.sources import Source, TasksFile, read_tasks_file
from data.tasks import TaskList, TaskSpecError, parse_task_flag, task_from_entry
from data.validation import DataValidationError, DataWarning

__all__ = [
    "DataArguments", "DataValidationError", "DataWarning", "MultiTaskCollator", "PreparedData", "Source", "TaskList",
    "TaskSpecError", "TasksFile", "WordAugmenter", "collect_rows", "default_backbone_path", "default_demo_args",
    "demo_csv_path", "demo_tasks", "encode_task", "label_counts", "load_hub", "make_train_transform",
    "parse_task_flag", "prepare_data", "read_source", "read_tasks_file", "resolve_sources", "resolve_tasks",
    "sample_weights", "task_from_entry",
]
