"""Read files (CSV, TSV, JSON, JSONL, Parquet, save_to_disk folders) and Hub datasets into pandas frames.

Frames keep a 0-based RangeIndex over the file's data rows, so `index + 1` is the row number used in messages
(header not counted), also after a `split_column` filter. Nested dicts (`{"labels": {"stress": 1}}`) are flattened
into `labels.stress`, also reachable as `stress` when that name is free.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd

from data.sources import SPLIT_ALIASES, Source
from data.validation import DataValidationError

_SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json", ".jsonl": "jsonl",
                   ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def detect_format(path: str) -> str:
    """File format from the suffix (or `disk` for a folder); raises for anything else."""
    p = Path(path)
    if p.is_dir():
        return "disk"
    fmt = _SUFFIX_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise DataValidationError(f"{path}: unknown file type {p.suffix!r} (allowed: "
                                  f"{', '.join(sorted(_SUFFIX_FORMATS))} or a datasets.save_to_disk folder)")
    return fmt


def check_unique_columns(names: list, origin: str) -> None:
    """Two columns with one name would make one of them unreachable (pandas renames the second `name.1`)."""
    seen: set = set()
    duplicated = [name for name in names if name in seen or seen.add(name)]
    if duplicated:
        raise DataValidationError(f"{origin}: column name {duplicated[0]!r} appears more than once in the header; "
                                  "rename the columns so each is unique")


def _decode_error(src: Source, sep: str, err: UnicodeDecodeError) -> DataValidationError:
    """The first undecodable byte located by data row (header not counted), read from the whole file."""
    raw = Path(src.path).read_bytes()
    encoding = src.encoding or "utf-8"
    try:
        raw.decode(encoding)
        start = err.start
    except UnicodeDecodeError as whole:
        start = whole.start
    records = sum(1 for _ in csv.reader(io.StringIO(raw[:start].decode(encoding), newline=""), delimiter=sep))
    row = records if src.column_names else records - 1  # the record holding the byte, header not counted
    return DataValidationError(f"{src.path}, row {max(row, 1)}: not {encoding} text (byte 0x{raw[start]:02x} at "
                               f"offset {start}); set `encoding:` on the source (e.g. cp1252, latin-1)")


def _read_delimited(src: Source, sep: str) -> pd.DataFrame:
    header = None if src.column_names else "infer"
    encoding, errors = src.encoding or "utf-8", src.encoding_errors or "strict"
    try:
        if header is not None:
            with open(src.path, encoding=encoding, errors=errors, newline="") as handle:
                check_unique_columns(next(csv.reader(handle, delimiter=sep), []), src.path)
        frame = pd.read_csv(src.path, sep=sep, header=header, names=src.column_names, encoding=encoding,
                            encoding_errors=errors, keep_default_na=False, na_values=[""])
    except UnicodeDecodeError as err:
        raise _decode_error(src, sep, err) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataValidationError(f"{src.path}: cannot parse as {'TSV' if sep == chr(9) else 'CSV'} ({err})") from None
    if src.column_names and len(frame.columns) != len(src.column_names):
        raise DataValidationError(f"{src.path}: column_names lists {len(src.column_names)} names but the file has "
                                  f"{len(frame.columns)} columns")
    return frame


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple]) -> dict:
    """`object_pairs_hook` for JSON: a key twice in one object is an error, not a silent overwrite."""
    seen: set = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def _read_json(path: str, lines: bool) -> list:
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataValidationError(f"{path}, line {line}: not utf-8 text (byte 0x{raw[err.start]:02x} at offset "
                                  f"{err.start}); re-encode the file as UTF-8") from None
    return _json_lines(path, text) if lines else _json_document(path, text)


def _json_document(path: str, text: str) -> list:
    try:
        records = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as err:
        raise DataValidationError(f"{path}: invalid JSON at line {err.lineno} ({err.msg})") from None
    except _DuplicateKey as err:
        raise DataValidationError(f"{path}: key {err.args[0]!r} appears twice in one record; keys must be unique "
                                  "(the second would silently win)") from None
    if isinstance(records, dict) and len(records) == 1 and isinstance(next(iter(records.values())), list):
        records = next(iter(records.values()))
    if not isinstance(records, list):
        raise DataValidationError(f"{path}: expected a JSON list of records (one object per example)")
    return records


def _json_lines(path: str, text: str) -> list:
    """One record per `\\n`-separated line (not `str.splitlines`: U+2028 and friends are valid inside JSON)."""
    records = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                records.append(json.loads(line, object_pairs_hook=_unique_keys))
            except json.JSONDecodeError as err:
                raise DataValidationError(f"{path}, line {lineno}: invalid JSON ({err.msg})") from None
            except _DuplicateKey as err:
                raise DataValidationError(f"{path}, line {lineno}: key {err.args[0]!r} appears twice; keys must be "
                                          "unique (the second would silently win)") from None
    return records


def _records_frame(records: list, path: str) -> pd.DataFrame:
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DataValidationError(f"{path}, row {i + 1}: expected an object with named fields, "
                                      f"got {type(rec).__name__}")
    return flatten(pd.DataFrame.from_records(records)) if records else pd.DataFrame()


def flatten(frame: pd.DataFrame) -> pd.DataFrame:
    """Expand columns of dicts into `outer.inner` columns, aliased as `inner` when that name is free."""
    for col in list(frame.columns):
        if frame[col].dtype != object:
            continue
        sample = frame[col].dropna()
        if sample.empty or not isinstance(sample.iloc[0], dict):
            continue
        inner = pd.json_normalize([v if isinstance(v, dict) else {} for v in frame[col]], sep=".")
        inner.index = frame.index
        frame = frame.drop(columns=[col])
        for sub in inner.columns:
            frame[f"{col}.{sub}"] = inner[sub]
            if sub not in frame.columns:
                frame[sub] = inner[sub]
    return frame


def _read_disk(path: str, split: str) -> pd.DataFrame:
    import datasets

    try:
        loaded = datasets.load_from_disk(path)
    except (FileNotFoundError, ValueError) as err:
        raise DataValidationError(f"{path}: not a datasets.save_to_disk folder ({err})") from None
    if isinstance(loaded, datasets.DatasetDict):
        names = {SPLIT_ALIASES.get(k, k): k for k in loaded}
        if split not in names and len(loaded) != 1:
            raise DataValidationError(f"{path}: saved DatasetDict has no {split!r} split "
                                      f"(splits: {', '.join(loaded)})")
        loaded = loaded[names.get(split, next(iter(loaded)))]
    return class_labels_to_names(loaded)


def disk_splits(path: str) -> list[str]:
    """Split names (aliases normalised) of a save_to_disk DatasetDict folder; [] for a single Dataset or a file."""
    if not (Path(path) / "dataset_dict.json").is_file():
        return []
    content = json.loads((Path(path) / "dataset_dict.json").read_text())
    return [SPLIT_ALIASES.get(s, s) for s in content.get("splits", [])]


def read_source(src: Source, split: str = "train") -> pd.DataFrame:
    """Read one source into a frame (row filter and max_rows applied); `split` picks from a saved DatasetDict."""
    if not Path(src.path).exists():
        raise DataValidationError(f"{src.path}: file not found")
    fmt = src.format or detect_format(src.path)
    if fmt in ("csv", "tsv"):
        frame = _read_delimited(src, "\t" if fmt == "tsv" else ",")
    elif fmt in ("json", "jsonl"):
        frame = _records_frame(_read_json(src.path, lines=fmt == "jsonl"), src.path)
    elif fmt == "parquet":
        try:
            import pyarrow.parquet as pq

            check_unique_columns(pq.read_schema(src.path).names, src.path)
            frame = flatten(pd.read_parquet(src.path))
        except DataValidationError:
            raise
        except Exception as err:  # pyarrow raises its own error types
            raise DataValidationError(f"{src.path}: cannot read as Parquet ({err})") from None
    else:
        frame = _read_disk(src.path, split)
    frame = frame.reset_index(drop=True)
    if src.column_names and fmt not in ("csv", "tsv"):
        frame = frame.rename(columns=dict(zip(frame.columns, src.column_names)))
    if src.split_column is not None:
        frame = _filter_split(frame, src)
    if src.max_rows is not None:
        frame = frame.iloc[: src.max_rows]
    return frame


def _filter_split(frame: pd.DataFrame, src: Source) -> pd.DataFrame:
    if src.split_column not in frame.columns:
        raise DataValidationError(f"{src.path}: missing split column {src.split_column!r} "
                                  f"(columns in the file: {', '.join(map(str, frame.columns))})")
    values = frame[src.split_column].astype(str)
    kept = frame[values == str(src.split)]
    if kept.empty:
        raise DataValidationError(f"{src.path}, column {src.split_column!r}: no row has the value {src.split!r} "
                                  f"(values: {', '.join(sorted(values.unique())[:20])})")
    return kept


def load_hub(name: str, config: str | None = None) -> dict[str, pd.DataFrame]:
    """Every split of a Hub (or local folder) dataset through `datasets.load_dataset`, as frames."""
    import datasets

    try:
        loaded = datasets.load_dataset(name, config)
    except Exception as err:  # network, missing dataset, bad config: all become one clear message
        raise DataValidationError(
            f"--dataset-name {name!r}{f' --dataset-config {config!r}' if config else ''}: could not load "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); offline runs need a local "
            "path or the datasets cache") from None
    if not isinstance(loaded, datasets.DatasetDict):
        loaded = datasets.DatasetDict({"train": loaded})
    return {SPLIT_ALIASES.get(k, k): class_labels_to_names(v) for k, v in loaded.items()}


def class_labels_to_names(dataset) -> pd.DataFrame:
    """Frame of a `datasets.Dataset` with `ClassLabel` ids (and lists of them) as names; -1 (unlabelled) as None."""
    import datasets

    frame = dataset.to_pandas()
    for name, feature in dataset.features.items():
        inner = getattr(feature, "feature", None)
        if isinstance(feature, datasets.ClassLabel):
            names = dict(enumerate(feature.names))
            frame[name] = frame[name].map(lambda i, names=names: names.get(i)).astype(object)
        elif isinstance(inner, datasets.ClassLabel):
            names = dict(enumerate(inner.names))
            frame[name] = frame[name].map(lambda ids, names=names: None if ids is None else [names[i] for i in ids])
    return flatten(frame)
