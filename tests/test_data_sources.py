"""Tasks files: tasks, label files, per-split sources, path resolution and their errors."""

from __future__ import annotations

import json

import pytest

from data.sources import Source, read_tasks_file
from data.tasks import TaskSpecError


def test_yaml_tasks_file_with_sources_and_label_file(tmp_path):
    (tmp_path / "labels.txt").write_text("joy\nanger\n\n")
    (tmp_path / "a.tsv").write_text("hi\t0\n")
    (tmp_path / "tasks.yaml").write_text(
        "text_column: body\n"
        "tasks:\n"
        "  - {name: emo, type: multilabel, labels: labels.txt}\n"
        "  - {name: vad, type: regression, columns: [V, A]}\n"
        "sources:\n"
        "  train:\n"
        "    - {path: a.tsv, column_names: [body, emo], columns: {emo: emo}}\n"
        "  dev:\n"
        "    - {path: b.csv, split_column: split, split: dev, columns: {vad: [V, A], emo: null}}\n")
    parsed = read_tasks_file(str(tmp_path / "tasks.yaml"))
    assert parsed.tasks.names == ["emo", "vad"]
    assert parsed.tasks.tasks[0]["labels"] == ["joy", "anger"] and parsed.tasks.tasks[1]["labels"] == ["V", "A"]
    assert parsed.text_column == "body"
    train = parsed.sources["train"][0]
    assert train.path == str(tmp_path / "a.tsv")  # resolved next to the tasks file
    assert train.task_columns("emo", ["emo"]) == ["emo"] and train.task_columns("vad", ["V", "A"]) is None
    dev = parsed.sources["validation"][0]
    assert dev.path == "b.csv"  # not next to the tasks file: left relative to the cwd
    assert dev.origin == "b.csv [split=dev]"


def test_json_list_form_and_default_columns(tmp_path):
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([{"name": "stress", "type": "binary"}]))
    parsed = read_tasks_file(str(path))
    assert parsed.sources == {} and parsed.tasks.columns == {"stress": ["stress"]}
    assert Source(path="x.csv").task_columns("stress", ["stress"]) == ["stress"]


@pytest.mark.parametrize("content, fragment", [
    ("tasks: [{name: a, type: binary}]\nsources: {training: [x.csv]}\n", "unknown split 'training'"),
    ("tasks: [{name: a, type: binary}]\nsources: [{path: x.csv, columns: {b: c}}]\n", "maps unknown task 'b'"),
    ("tasks: [{name: a, type: binary}]\nsources: [{path: x.csv, sep: ';'}]\n", "unknown key(s) ['sep']"),
    ("tasks: [{name: a, type: binary}]\nsources: [{path: x.csv, split: dev}]\n", "give split_column and split"),
    ("tasks: [{name: a, type: multilabel, labels: nowhere.txt}]\n", "labels file 'nowhere.txt' not found"),
    ("nothing: here\n", "expected a mapping with a 'tasks' list"),
    ("tasks: [\n", "not valid YAML"),
])
def test_tasks_file_errors(tmp_path, content, fragment):
    path = tmp_path / "tasks.yaml"
    path.write_text(content)
    with pytest.raises(TaskSpecError) as err:
        read_tasks_file(str(path))
    assert fragment in str(err.value) and str(path) in str(err.value)


def test_missing_tasks_file():
    with pytest.raises(TaskSpecError, match="file not found"):
        read_tasks_file("/nonexistent/tasks.yaml")


def test_bad_task_in_file_names_the_file(tmp_path):
    path = tmp_path / "tasks.yaml"
    path.write_text("tasks: [{name: a, type: ordinal}]\n")
    with pytest.raises(TaskSpecError, match=r"tasks.yaml: task 'a'.type: 'ordinal' is not a task type; allowed: "):
        read_tasks_file(str(path))
