"""Reading texts to classify (TXT, CSV, TSV, JSONL, JSON, stdin, literal strings) and writing predictions.

Every malformed input raises `InputError` (a `ValueError`) with a one-line message naming the file, line, column or
flag, so `predict.py` can print it and exit without a traceback. Outputs are written atomically (temporary file in the
target folder, then `os.replace`) so an interrupted run never leaves a half-written prediction file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from inference.errors import InputError
from modeling.postprocessing import flatten_result

TEXT_SUFFIXES = (".txt", ".text")
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
INPUT_SUFFIXES = (*TEXT_SUFFIXES, *TABLE_SUFFIXES, *JSON_LINES_SUFFIXES, ".json")
OUTPUT_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".tsv")
DEFAULT_TEXT_COLUMN = "text"

__all__ = ["InputError", "collect_texts", "read_texts_file", "read_texts_stream", "write_predictions"]


def decode_utf8(raw: bytes, source: str) -> str:
    """Decode bytes as UTF-8 (a leading BOM is dropped); non-UTF-8 input names the byte offset."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{source} is not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}); re-encode it as UTF-8"
        ) from None


def _cell_text(value: Any) -> str:
    """A table or JSON cell as text: missing values become the empty string (they still get a prediction)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _column_texts(rows: Sequence[Mapping[str, Any]], columns: Iterable[str], column: str, source: str) -> list[str]:
    columns = list(columns)
    if column not in columns:
        raise InputError(f"{source} has no text column {column!r}; available columns: {columns} (use --text-column)")
    return [_cell_text(row.get(column)) for row in rows]


def parse_table(content: str, delimiter: str, column: str, source: str) -> list[str]:
    """Texts of one column of a CSV/TSV document with a header row. In a one-column table a blank line is an empty
    text (it gets a prediction); in a wider table blank lines are skipped."""
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        rows = list(reader)
    except csv.Error as err:
        kind = "TSV" if delimiter == "\t" else "CSV"
        raise InputError(f"{source} line {reader.line_num}: malformed {kind}: {err}") from None
    if not header:
        raise InputError(f"{source} is empty: expected a header row and at least one text")
    if column not in header:
        raise InputError(f"{source} has no text column {column!r}; available columns: {header} (use --text-column)")
    if len(header) > 1:
        rows = [row for row in rows if row]
    if not rows:
        raise InputError(f"{source} has a header but no rows")
    position = header.index(column)
    return [row[position] if position < len(row) else "" for row in rows]


def _json_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a JSON object with a text field, got {type(value).__name__}")
    return value


def parse_json_lines(content: str, column: str, source: str) -> list[str]:
    """Texts of one field of a JSON Lines document (blank lines skipped)."""
    rows, seen = [], {}
    for number, line in enumerate(split_lines(content), start=1):
        if not line.strip():
            continue
        try:
            row = _json_object(json.loads(line), f"{source} line {number}")
        except json.JSONDecodeError as err:
            raise InputError(f"{source} line {number}: invalid JSON ({err.msg} at column {err.colno})") from None
        if column not in row:
            raise InputError(f"{source} line {number} has no text field {column!r}; fields: {list(row)}")
        seen.update(dict.fromkeys(row))
        rows.append(row)
    if not rows:
        raise InputError(f"{source} is empty: expected one JSON object per line")
    return _column_texts(rows, seen, column, source)


def parse_json_document(content: str, column: str, source: str) -> list[str]:
    """Texts of a JSON array of strings, or of objects holding the text column."""
    try:
        data = json.loads(content)
    except json.JSONDecodeError as err:
        raise InputError(f"{source}: invalid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, list) or not data:
        raise InputError(f"{source}: expected a non-empty JSON array of strings or objects")
    if all(isinstance(item, str) for item in data):
        return list(data)
    rows = [_json_object(item, f"{source} item {i}") for i, item in enumerate(data)]
    missing = [i for i, row in enumerate(rows) if column not in row]
    if missing:
        raise InputError(f"{source} item {missing[0]} has no text field {column!r}; fields: {list(rows[missing[0]])}")
    return [_cell_text(row[column]) for row in rows]


def split_lines(content: str) -> list[str]:
    """Lines ended by `\\n` or `\\r\\n` only (a final newline ends the last line). `str.splitlines` would also cut
    at form feeds, U+2028 and other separators that belong inside a text, and the output would not line up."""
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def parse_lines(content: str, source: str) -> list[str]:
    """One text per line; inner blank lines are texts too (they get a prediction), a final newline is not."""
    lines = split_lines(content)
    if not lines:
        raise InputError(f"{source} is empty: expected one text per line")
    return lines


def read_texts_file(path: str | os.PathLike, text_column: str | None = None) -> list[str]:
    """Texts from a file; the format follows the suffix (.txt, .csv, .tsv, .jsonl/.ndjson, .json; others: TXT)."""
    path = Path(path)
    source = f"input file {str(path)!r}"
    if not path.exists():
        raise InputError(f"{source} does not exist")
    if path.is_dir():
        raise InputError(f"{source} is a folder; give a file ({', '.join(INPUT_SUFFIXES)})")
    content = decode_utf8(path.read_bytes(), source)
    if not content.strip():
        raise InputError(f"{source} is empty")
    suffix, column = path.suffix.lower(), text_column or DEFAULT_TEXT_COLUMN
    if suffix in TABLE_SUFFIXES:
        return parse_table(content, TABLE_SUFFIXES[suffix], column, source)
    if suffix in JSON_LINES_SUFFIXES:
        return parse_json_lines(content, column, source)
    if suffix == ".json":
        return parse_json_document(content, column, source)
    if text_column is not None:
        raise InputError(f"--text-column needs a CSV, TSV, JSON or JSONL input; {source} is read as one text per line")
    return parse_lines(content, source)


def read_texts_stream(stream: BinaryIO, source: str = "standard input") -> list[str]:
    """Texts from a byte stream (stdin), one per line."""
    content = decode_utf8(stream.read(), source)
    if not content.strip():
        raise InputError(f"{source} is empty: pass texts with --input FILE, --text, or one per line on stdin")
    return parse_lines(content, source)


def collect_texts(input_path: str | None, texts: Sequence[str] | None, text_column: str | None) -> list[str]:
    """The texts of one run: `--text` values, else `--input FILE` (`-` = stdin), else stdin."""
    if texts and input_path:
        raise InputError("give either --input or --text, not both")
    if texts:
        return list(texts)
    if input_path and input_path != "-":
        return read_texts_file(input_path, text_column)
    if sys.stdin is None or (input_path is None and sys.stdin.isatty()):
        raise InputError("no input: pass --input FILE, --text TEXT, or pipe texts (one per line) on stdin")
    return read_texts_stream(sys.stdin.buffer)


def output_format(path: str | os.PathLike | None) -> str:
    """'jsonl', 'csv' or 'tsv' from the output suffix (stdout: 'jsonl')."""
    if path is None:
        return "jsonl"
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"--output {str(path)!r}: unknown suffix {suffix!r}; allowed: {', '.join(OUTPUT_SUFFIXES)}")
    return {".csv": "csv", ".tsv": "tsv"}.get(suffix, "jsonl")


def render_jsonl(texts: Sequence[str], results: Sequence[Mapping[str, Any]]) -> str:
    """One JSON object per text: ``{"text": ..., <task>: result, ...}``."""
    return "".join(json.dumps({"text": t, **r}, ensure_ascii=False) + "\n" for t, r in zip(texts, results))


def render_table(texts: Sequence[str], results: Sequence[Mapping[str, Any]], delimiter: str = ",") -> str:
    """A CSV/TSV table: the text, then the flattened task columns (see `flatten_result`)."""
    rows = [{"text": t, **flatten_result(r)} for t, r in zip(texts, results)]
    header = list(dict.fromkeys(key for row in rows for key in row)) or ["text"]
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=header, delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_text_atomic(path: str | os.PathLike, content: str) -> Path:
    """Write text to `path` through a temporary file in the same folder and an atomic rename, so a reader never
    sees half a file; the file gets the mode a plain `open` would give (mkstemp alone makes it 0600)."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(handle, 0o666 & ~mask)
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_atomic(path: str | os.PathLike, content: str) -> Path:
    """`write_text_atomic` for `--output`: a missing folder is an `InputError` naming the flag."""
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise InputError(f"--output {str(path)!r}: folder {str(path.parent)!r} does not exist")
    return write_text_atomic(path, content)


def write_predictions(
    texts: Sequence[str], results: Sequence[Mapping[str, Any]], output: str | os.PathLike | None = None
) -> Path | None:
    """Write predictions as JSONL/CSV/TSV to `output` (atomically), or JSONL to stdout when `output` is None."""
    fmt = output_format(output)
    if fmt == "jsonl":
        content = render_jsonl(texts, results)
    else:
        content = render_table(texts, results, delimiter="," if fmt == "csv" else "\t")
    if output is None:
        sys.stdout.write(content)
        sys.stdout.flush()
        return None
    return write_atomic(output, content)
