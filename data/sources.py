"""Tasks files: the tasks plus, per split, the files they come from and how each file's columns map to tasks.

```yaml
text_column: text                 # default text column of every source
tasks:
  - {name: emotions, type: multilabel, labels: goemotions/labels.txt}
  - {name: vad, type: regression, labels: [V, A, D], columns: [V, A, D], output_range: [1, 5]}
sources:                          # a list (training files only) or a mapping split -> list
  train:
    - path: goemotions/train.tsv
      column_names: [text, emotions, id]   # header-less file: these names, in order
      columns: {emotions: emotions}        # task -> column(s); tasks left out are unlabelled here
    - {path: emobank/emobank.csv, split_column: split, split: train, columns: {vad: [V, A, D]}}
```

Relative paths (sources and label files) are looked up next to the tasks file first, then in the current directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.tasks import TaskList, TaskSpecError, task_from_entry

SPLITS = ("train", "validation", "test", "calibration")
SPLIT_ALIASES = {"dev": "validation", "valid": "validation", "val": "validation", "eval": "validation"}
FORMATS = ("csv", "tsv", "json", "jsonl", "parquet", "disk")
_SOURCE_KEYS = ("path", "format", "column_names", "text_column", "columns", "split_column", "split", "encoding",
                "encoding_errors", "drop_empty_text", "max_rows")


@dataclass
class Source:
    """One file feeding one split, with its own text column and task -> column(s) mapping."""

    path: str
    format: str | None = None
    column_names: list[str] | None = None
    text_column: str | None = None
    columns: dict[str, list[str] | None] | None = None
    split_column: str | None = None
    split: str | None = None
    encoding: str | None = None
    encoding_errors: str | None = None
    drop_empty_text: bool = False
    max_rows: int | None = None

    def __post_init__(self) -> None:
        if self.format is not None and self.format not in FORMATS:
            raise TaskSpecError(f"source {self.path}: unknown format {self.format!r} (allowed: {', '.join(FORMATS)})")
        if (self.split_column is None) != (self.split is None):
            raise TaskSpecError(f"source {self.path}: give split_column and split together")
        if self.columns is not None:
            self.columns = {str(t): ([c] if isinstance(c, str) else None if c is None else [str(x) for x in c])
                            for t, c in self.columns.items()}

    @property
    def origin(self) -> str:
        """How messages name this source: the file, plus the split filter when there is one."""
        return self.path if self.split is None else f"{self.path} [{self.split_column}={self.split}]"

    def task_columns(self, name: str, default: list[str]) -> list[str] | None:
        """Columns feeding task `name` in this source (`default`: the task's own); None: no labels here."""
        if self.columns is None:
            return default
        return self.columns.get(name)


@dataclass
class TasksFile:
    """Parsed tasks file."""

    path: str
    tasks: TaskList
    sources: dict[str, list[Source]] = field(default_factory=dict)
    text_column: str | None = None


def resolve_path(value: str, base: Path) -> str:
    """A relative path next to the tasks file if it exists there, else relative to the cwd."""
    candidate = Path(value).expanduser()
    if candidate.is_absolute():
        return str(candidate)
    beside = base / candidate
    return str(beside if beside.exists() else candidate)


def _load_mapping(path: str) -> dict[str, Any]:
    if not Path(path).is_file():
        raise TaskSpecError(f"--tasks-file {path}: file not found")
    text = Path(path).read_text(encoding="utf-8")
    try:
        if path.endswith(".json"):
            content = json.loads(text)
        else:
            import yaml

            content = yaml.safe_load(text)
    except ValueError as err:
        raise TaskSpecError(f"--tasks-file {path}: not valid JSON/YAML ({err})") from None
    except Exception as err:  # yaml.YAMLError does not derive from ValueError
        raise TaskSpecError(f"--tasks-file {path}: not valid YAML ({err})") from None
    if isinstance(content, list):
        content = {"tasks": content}
    if not isinstance(content, dict) or "tasks" not in content:
        raise TaskSpecError(f"--tasks-file {path}: expected a mapping with a 'tasks' list (or a list of tasks)")
    return content


def _read_label_file(value: str, base: Path, where: str) -> list[str]:
    path = resolve_path(value, base)
    if not Path(path).is_file():
        raise TaskSpecError(f"{where}: labels file {value!r} not found (looked in {base} and the cwd)")
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def _parse_source(entry: Any, base: Path, where: str) -> Source:
    if isinstance(entry, str):
        entry = {"path": entry}
    if not isinstance(entry, dict) or "path" not in entry:
        raise TaskSpecError(f"{where}: each source needs a 'path'")
    unknown = sorted(set(entry) - set(_SOURCE_KEYS))
    if unknown:
        raise TaskSpecError(f"{where}: source {entry['path']!r} has unknown key(s) {unknown} "
                            f"(allowed: {', '.join(_SOURCE_KEYS)})")
    try:
        return Source(**{**entry, "path": resolve_path(str(entry["path"]), base)})
    except TaskSpecError as err:
        raise TaskSpecError(f"{where}: {err}") from None


def _parse_sources(raw: Any, base: Path, where: str) -> dict[str, list[Source]]:
    if raw is None:
        return {}
    if isinstance(raw, list):
        raw = {"train": raw}
    if not isinstance(raw, dict):
        raise TaskSpecError(f"{where}: 'sources' must be a list (training files) or a mapping split -> list")
    out: dict[str, list[Source]] = {}
    for split, entries in raw.items():
        name = SPLIT_ALIASES.get(split, split)
        if name not in SPLITS:
            raise TaskSpecError(f"{where}: unknown split {split!r} in sources (allowed: {', '.join(SPLITS)})")
        entries = entries if isinstance(entries, list) else [entries]
        out[name] = [_parse_source(e, base, f"{where}, sources.{split}") for e in entries]
    return out


def read_tasks_file(path: str) -> TasksFile:
    """Parse a YAML/JSON tasks file into task specs and per-split sources."""
    content = _load_mapping(path)
    base = Path(path).resolve().parent
    where = f"--tasks-file {path}"
    tasks = TaskList()
    for entry in content["tasks"] or []:
        if isinstance(entry, dict) and isinstance(entry.get("labels"), str):
            names = _read_label_file(entry["labels"], base, f"{where}, task {entry.get('name')!r}")
            entry = {**entry, "labels": names}
        tasks.add(*task_from_entry(entry, where), where)
    if not tasks.tasks:
        raise TaskSpecError(f"{where}: the 'tasks' list is empty")
    known = set(tasks.names)
    sources = _parse_sources(content.get("sources"), base, where)
    for split_sources in sources.values():
        for src in split_sources:
            for name in (src.columns or {}):
                if name not in known:
                    raise TaskSpecError(f"{where}: source {src.path} maps unknown task {name!r} "
                                        f"(tasks: {', '.join(sorted(known))})")
    return TasksFile(path=path, tasks=tasks, sources=sources, text_column=content.get("text_column"))
