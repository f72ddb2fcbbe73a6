"""Errors and warnings about the user's data, and the checks that span splits.

Every problem is reported before tokenization, with the file, the 1-based data row (header not counted) and the
column, so the user can open the file and fix it.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


class DataValidationError(ValueError):
    """The data cannot be used as given; the message names file, row and column where it can."""


class DataWarning(UserWarning):
    """Something about the data is suspicious but training can go on."""


def where(origin: str, row: int | None = None, column: str | None = None) -> str:
    """`file, row N, column 'c'` prefix for messages (row is 1-based, header not counted)."""
    parts = [origin]
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)


def first_bad(mask: np.ndarray | pd.Series, index: pd.Index) -> tuple[int, int]:
    """(1-based row of the first True entry, number of True entries)."""
    mask = np.asarray(mask, dtype=bool)
    positions = np.flatnonzero(mask)
    return int(index[positions[0]]) + 1, int(len(positions))


def warn(message: str, sink: list[str] | None = None) -> None:
    """Emit a `DataWarning`, log it, and keep it in `sink` (PreparedData.warnings) when given."""
    logger.warning(message)
    warnings.warn(message, DataWarning, stacklevel=3)
    if sink is not None:
        sink.append(message)


def require_columns(frame: pd.DataFrame, columns: list[str], origin: str, what: str, hint: str = "") -> None:
    """Raise when `frame` lacks any of `columns`, listing the columns it has."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns[:30]))
        raise DataValidationError(f"{origin}: missing {what} column {missing[0]!r} (columns in the file: {have})"
                                  f"{'; ' + hint if hint else ''}")


def check_texts(texts: pd.Series, origin: str, column: str) -> None:
    """Texts must be strings (not numbers or lists), present, and not only whitespace."""
    if pd.api.types.is_numeric_dtype(texts) or pd.api.types.is_bool_dtype(texts):
        raise DataValidationError(f"{origin}, column {column!r}: holds {texts.dtype} values, not text; point "
                                  "--text-column (or text_column in a tasks file) at the column with the texts")
    not_text = texts.map(lambda value: value is not None and not isinstance(value, str)
                         and not (isinstance(value, float) and np.isnan(value))).to_numpy(dtype=bool)
    if not_text.any():
        row, count = first_bad(not_text, texts.index)
        value = texts.to_numpy()[np.flatnonzero(not_text)[0]]
        raise DataValidationError(f"{where(origin, row, column)}: a {type(value).__name__} ({value!r:.60}), not a "
                                  f"text ({count} such row(s)); the text column must hold strings")
    as_str = texts.where(texts.notna(), "").astype(str)
    empty = as_str.str.strip().eq("").to_numpy()
    if empty.any():
        row, count = first_bad(empty, texts.index)
        raise DataValidationError(f"{where(origin, row, column)}: empty or whitespace-only text "
                                  f"({count} such row(s) in the file; remove them or set drop_empty_text: true "
                                  "on the source in a tasks file)")


def check_overlap(train_texts: list[str], other_texts: list[str], other: str, sink: list[str]) -> int:
    """Warn when texts of the training split also appear in another split; returns the distinct count."""
    count = len(set(other_texts).intersection(train_texts))
    if count:
        warn(f"{count} distinct text(s) appear in both the train and the {other} split; {other} scores will be "
             "optimistic", sink)
    return count
