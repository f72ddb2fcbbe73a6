"""Turn raw label cells into the contract's label arrays, inferring label names when the task has none.

Accepted encodings:
- multiclass: names or integer ids (ids only when the label names are not themselves integers);
- multilabel: a list cell, a `,`/`;`-separated string of names or ids (GoEmotions), or one 0/1 column per label;
- binary: 0/1, true/false (any case), or the task's two label names [negative, positive];
- regression: one numeric column per output.
An empty cell is a missing label (-100 / NaN), never an error.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from data.validation import DataValidationError, first_bad, where
from modeling.task_schema import IGNORE_INDEX, missing_labels

_SPLIT_RE = re.compile(r"[,;]")
_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


def _canon(value) -> str | float:
    """Canonical token of one cell: stripped string, integral floats as ints, NaN/None/'' as NaN."""
    if value is None:
        return math.nan
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return math.nan
        return str(int(value)) if float(value).is_integer() else str(value)
    text = str(value).strip()
    return text if text else math.nan


def _tokens(series: pd.Series) -> pd.Series:
    return series.map(_canon, na_action=None).astype(object)


def _token_lists(series: pd.Series) -> pd.Series:
    """Each cell as a list of tokens (multilabel); None for a missing cell."""

    def split(value):
        if isinstance(value, (list, tuple, np.ndarray)):
            return [t for t in (_canon(x) for x in value) if isinstance(t, str)]
        token = _canon(value)
        if not isinstance(token, str):
            return None
        return [t.strip() for t in _SPLIT_RE.split(token) if t.strip()]

    return series.map(split).astype(object)


def _int_like(tokens: pd.Series) -> bool:
    return bool(len(tokens)) and tokens.astype(str).str.fullmatch(r"-?\d+").all()


def _natural_sort(tokens: set[str]) -> list[str]:
    values = pd.Series(sorted(tokens), dtype=object)
    if _int_like(values):
        return sorted(tokens, key=int)
    return sorted(tokens)


def raw_tokens(task: dict, frame: pd.DataFrame, columns: list[str]) -> set[str]:
    """Distinct label tokens of a source (for label-name inference)."""
    if task["type"] == "regression" or (task["type"] == "multilabel" and len(columns) > 1):
        return set()
    if task["type"] == "multilabel":
        lists = _token_lists(frame[columns[0]]).dropna()
        return {t for lst in lists for t in lst}
    return set(_tokens(frame[columns[0]]).dropna())


def check_no_negative_ids(task: dict, frame: pd.DataFrame, columns: list[str], origin: str) -> None:
    """Label names inferred from integer tokens are class ids, and an id cannot be negative."""
    if task["type"] not in ("multiclass", "multilabel") or len(columns) != 1:
        return
    tokens = _token_lists(frame[columns[0]]) if task["type"] == "multilabel" else _tokens(frame[columns[0]])
    negative = tokens.map(lambda cell: any(re.fullmatch(r"-\d+", t) for t in (
        cell if isinstance(cell, list) else [cell] if isinstance(cell, str) else [])))
    bad = negative.to_numpy(dtype=bool)
    if bad.any():
        row, count = first_bad(bad, frame.index)
        value = frame[columns[0]].to_numpy()[np.flatnonzero(bad)[0]]
        raise DataValidationError(f"{where(origin, row, columns[0])}: negative label id in {str(value)!r} for task "
                                  f"{task['name']!r} ({count} such row(s)); ids index the label names from 0: leave "
                                  "the cell empty for a missing label, or list the label names in a tasks file")


def infer_labels(task: dict, tokens: set[str], columns: list[str]) -> list[str]:
    """Label names for a task that gave none, from the training split's tokens (sorted, ints numerically)."""
    if task["type"] == "regression" or (task["type"] == "multilabel" and len(columns) > 1):
        return list(columns)
    if task["type"] == "binary":
        lowered = {t.lower() for t in tokens}
        if lowered <= (_TRUE | _FALSE):
            return ["0", "1"]
        if len(tokens) != 2:
            raise DataValidationError(f"task {task['name']!r} (binary): the training data has {len(tokens)} distinct "
                                      f"value(s) {sorted(tokens)[:10]}; give 0/1, true/false, or set labels: "
                                      "[negative, positive] in a tasks file")
        return sorted(tokens)
    if not tokens:
        raise DataValidationError(f"task {task['name']!r}: no labelled row in the training split, cannot infer labels")
    return _natural_sort(tokens)


def _resolve(tokens: pd.Series, names: list[str]) -> pd.Series:
    """Token -> class index as float (NaN when unknown); integer ids allowed unless names are integers."""
    idx = tokens.map({n: i for i, n in enumerate(names)})
    if not _int_like(pd.Series(names, dtype=object)):
        ids = pd.to_numeric(tokens.where(tokens.astype(str).str.fullmatch(r"\d+"), None), errors="coerce")
        ids = ids.where(ids < len(names))
        idx = idx.fillna(ids)
    return idx.astype(float)


def _unknown(task: dict, origin: str, column: str, index: pd.Index, bad: np.ndarray, token: str) -> None:
    row, count = first_bad(bad, index)
    names = task["labels"] or []
    shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
    ids = "" if _int_like(pd.Series(names, dtype=object)) else f" or ids 0-{len(names) - 1}"
    raise DataValidationError(f"{where(origin, row, column)}: unknown label {token!r} for task {task['name']!r} "
                              f"({count} row(s) with unknown labels; allowed: {shown}{ids})")


def _multiclass(task: dict, frame: pd.DataFrame, col: str, origin: str) -> np.ndarray:
    tokens = _tokens(frame[col])
    idx = _resolve(tokens, task["labels"])
    bad = (tokens.notna() & idx.isna()).to_numpy()
    if bad.any():
        _unknown(task, origin, col, frame.index, bad, tokens[bad].iloc[0])
    return idx.fillna(IGNORE_INDEX).to_numpy(dtype=np.int64)


def _binary(task: dict, frame: pd.DataFrame, col: str, origin: str) -> np.ndarray:
    tokens = _tokens(frame[col])
    names = task["labels"] or ["0", "1"]
    lowered = tokens.where(tokens.isna(), tokens.astype(str).str.lower())
    value = tokens.map({names[0]: 0.0, names[1]: 1.0})
    value = value.fillna(lowered.map({**{t: 0.0 for t in _FALSE}, **{t: 1.0 for t in _TRUE}})).astype(float)
    bad = (tokens.notna() & value.isna()).to_numpy()
    if bad.any():
        row, count = first_bad(bad, frame.index)
        raise DataValidationError(f"{where(origin, row, col)}: unknown label {tokens[bad].iloc[0]!r} for binary task "
                                  f"{task['name']!r} ({count} such row(s); allowed: {names[0]}, {names[1]}, 0/1, "
                                  "true/false)")
    return value.fillna(IGNORE_INDEX).to_numpy(dtype=np.float32)


def _multilabel_lists(task: dict, frame: pd.DataFrame, col: str, origin: str) -> np.ndarray:
    lists = _token_lists(frame[col])
    out = np.zeros((len(frame), len(task["labels"])), dtype=np.float32)
    missing = lists.isna().to_numpy()
    out[missing] = IGNORE_INDEX
    exploded = lists.reset_index(drop=True).explode().dropna()
    if len(exploded):
        idx = _resolve(exploded.astype(object), task["labels"])
        bad_rows = exploded.index[idx.isna().to_numpy()]
        if len(bad_rows):
            mask = np.zeros(len(frame), dtype=bool)
            mask[bad_rows] = True
            _unknown(task, origin, col, frame.index, mask, exploded[idx.isna()].iloc[0])
        out[exploded.index.to_numpy(), idx.to_numpy(dtype=np.int64)] = 1.0
    return out


def _multilabel_columns(task: dict, frame: pd.DataFrame, cols: list[str], origin: str) -> np.ndarray:
    if len(cols) != len(task["labels"]):
        raise DataValidationError(f"{origin}: task {task['name']!r} has {len(task['labels'])} labels but "
                                  f"{len(cols)} 0/1 columns {cols}")
    flags = {"name": task["name"], "type": "binary", "labels": ["0", "1"]}
    return np.stack([_binary(flags, frame, c, origin) for c in cols], axis=1)


def _regression(task: dict, frame: pd.DataFrame, cols: list[str], origin: str) -> np.ndarray:
    if len(cols) != len(task["labels"]):
        raise DataValidationError(f"{origin}: task {task['name']!r} has {len(task['labels'])} outputs "
                                  f"{task['labels']} but {len(cols)} column(s) {cols}")
    out = np.empty((len(frame), len(cols)), dtype=np.float32)
    for j, col in enumerate(cols):
        raw = frame[col]
        if not pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw):
            cells = raw.astype(object)
            cells = cells.where(cells.isna(), cells.astype(str).str.strip())
            raw = cells.where(cells.ne(""), None)
        numeric = pd.to_numeric(raw, errors="coerce")
        bad = (raw.notna() & numeric.isna()).to_numpy()
        if bad.any():
            row, count = first_bad(bad, frame.index)
            raise DataValidationError(f"{where(origin, row, col)}: non-numeric value {raw[bad].iloc[0]!r} for "
                                      f"regression task {task['name']!r} ({count} such row(s); leave the cell empty "
                                      "for a missing value)")
        infinite = np.isinf(numeric.to_numpy(dtype=np.float64))
        if infinite.any():
            row, count = first_bad(infinite, frame.index)
            shown = str(raw[infinite].iloc[0])
            raise DataValidationError(f"{where(origin, row, col)}: non-finite value {shown!r} for "
                                      f"regression task {task['name']!r} ({count} such row(s); targets must be "
                                      "finite numbers)")
        out[:, j] = numeric.to_numpy(dtype=np.float64)
    return out


def encode_task(task: dict, frame: pd.DataFrame, columns: list[str] | None, origin: str) -> np.ndarray:
    """Label array of `task` for every row of `frame`; all-missing when the source has no column for it."""
    n = len(frame)
    if columns is None:
        return missing_labels(task, n)
    if task["type"] == "multiclass":
        return _multiclass(task, frame, columns[0], origin)
    if task["type"] == "binary":
        return _binary(task, frame, columns[0], origin)
    if task["type"] == "multilabel":
        if len(columns) > 1:
            return _multilabel_columns(task, frame, columns, origin)
        return _multilabel_lists(task, frame, columns[0], origin)
    return _regression(task, frame, columns, origin)
