"""Tasks as the data side reads them: a task dict of `modeling.task_schema` plus the column(s) it comes from.

The schema (fields, defaults, validation) belongs to `modeling`; this module only parses the two ways a user names
tasks (`--task NAME:TYPE[:COLUMN[,COLUMN...]]` and tasks-file entries, whose `column` / `columns` keys are about
reading files) and reports schema errors as data errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from data.validation import DataValidationError
from modeling.task_schema import TASK_DEFAULTS, TASK_TYPES, TaskSchemaError, normalize_task

# Keys a tasks-file entry may carry besides the schema keys: where the task's labels are read from.
COLUMN_KEYS = ("column", "columns")


class TaskSpecError(DataValidationError):
    """A task definition (flag or tasks-file entry) is malformed."""


@dataclass
class TaskList:
    """Task dicts in order (labels may still be None until inferred) and the default column(s) of each task."""

    tasks: list[dict] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [task["name"] for task in self.tasks]

    def add(self, task: dict, columns: list[str], where: str) -> None:
        """Append a task; a name already taken is an error."""
        if task["name"] in self.columns:
            raise TaskSpecError(f"{where}: task name {task['name']!r} is defined twice")
        self.tasks.append(task)
        self.columns[task["name"]] = list(columns)

    def extend(self, other: TaskList, where: str) -> None:
        for task in other.tasks:
            self.add(task, other.columns[task["name"]], where)


def build_task(entry: dict[str, Any], columns: list[str], where: str) -> dict:
    """A draft task dict (labels may be unset) from schema keys; a regression task's outputs default to its columns."""
    entry = dict(entry)
    if entry.get("type") == "regression" and entry.get("labels") is None:
        entry["labels"] = list(columns or [entry.get("name")])
    try:
        return normalize_task(entry, require_labels=False, where=f"task {entry.get('name')!r}")
    except TaskSchemaError as err:
        raise TaskSpecError(f"{where}: {err}") from None


def task_from_entry(entry: Any, where: str = "tasks file") -> tuple[dict, list[str]]:
    """(task dict, default columns) from a tasks-file entry; `column` or `columns` name the default source."""
    if not isinstance(entry, dict):
        raise TaskSpecError(f"{where}: each task must be a mapping, got {type(entry).__name__}")
    unknown = sorted(set(entry) - set(TASK_DEFAULTS) - set(COLUMN_KEYS))
    if unknown:
        raise TaskSpecError(f"{where}: task {entry.get('name')!r} has unknown key(s) {unknown} "
                            f"(allowed: {', '.join(sorted([*TASK_DEFAULTS, *COLUMN_KEYS]))})")
    for required in ("name", "type"):
        if required not in entry:
            raise TaskSpecError(f"{where}: a task is missing the required key {required!r}")
    cols = entry.get("columns", entry.get("column"))
    columns = [cols] if isinstance(cols, str) else [str(c) for c in cols or []]
    columns = columns or [str(entry["name"])]
    return build_task({k: v for k, v in entry.items() if k not in COLUMN_KEYS}, columns, where), columns


def parse_task_flag(flag: str) -> tuple[dict, list[str]]:
    """(task dict, columns) from `NAME:TYPE[:COLUMN[,COLUMN...]]` (the `--task` flag)."""
    parts = flag.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise TaskSpecError(f"--task {flag!r}: expected NAME:TYPE[:COLUMN[,COLUMN...]] "
                            f"with TYPE one of {', '.join(TASK_TYPES)}")
    name = parts[0].strip()
    columns = [c.strip() for c in parts[2].split(",") if c.strip()] if len(parts) == 3 else []
    columns = columns or [name]
    return build_task({"name": name, "type": parts[1].strip()}, columns, f"--task {flag!r}"), columns
