"""The README's flag reference, generated from the argument dataclasses so it cannot drift.

`python -m training.docs` rewrites the block between the markers in README.md; a test checks it is current.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from transformers import TrainingArguments

BEGIN, END = "<!-- flags:begin -->", "<!-- flags:end -->"


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "required"
    if isinstance(value, list):
        return " ".join(map(str, value)) or "(none)"
    return "(unset)" if value is None else str(value)


def documented_fields(cls, only_new: bool) -> list[dataclasses.Field]:
    """The fields of an argument dataclass that are flags of this project: every field with a help string, and for
    a `TrainingArguments` subclass (`only_new`) only those it adds or redefines."""
    stock = {f.name: f for f in dataclasses.fields(TrainingArguments)}
    return [field for field in dataclasses.fields(cls)
            if field.init and field.metadata.get("help") is not None
            and not (only_new and stock.get(field.name) is field)]


def flag_groups() -> list[tuple[str, type, bool]]:
    """(title, dataclass, only_new) of the three flag groups of the training scripts."""
    from data.arguments import DataArguments
    from training.arguments import ModelArguments, MultiTaskTrainingArguments

    return [("Model and losses", ModelArguments, False), ("Data", DataArguments, False),
            ("Training (plus every `TrainingArguments` flag)", MultiTaskTrainingArguments, True)]


def _rows(cls, only_new: bool) -> list[str]:
    rows = []
    for field in documented_fields(cls, only_new):
        help_text = field.metadata["help"]
        flags = [f"--{field.name.replace('_', '-')}", *field.metadata.get("aliases", [])]
        flags = [flag for flag in dict.fromkeys(flags) if "_" not in flag]
        help_text = " ".join(str(help_text).split()).replace("|", "\\|")
        rows.append(f"| `{'`, `'.join(flags)}` | {_default(field)} | {help_text} |")
    return rows


def flag_reference_markdown() -> str:
    """One table per argument group; stock TrainingArguments flags are listed only where this project changes them."""
    parts = []
    for title, cls, only_new in flag_groups():
        parts += [f"#### {title}", "", "| flag | default | meaning |", "|---|---|---|", *_rows(cls, only_new), ""]
    return "\n".join(parts).rstrip() + "\n"


def replace_block(text: str, block: str) -> str:
    """The README text with the flags block replaced."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + block + text[end:]


def main(path: str = "README.md") -> int:
    readme = Path(path)
    readme.write_text(replace_block(readme.read_text(encoding="utf-8"), flag_reference_markdown()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
