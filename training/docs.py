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


def _rows(cls, only_new: bool) -> list[str]:
    stock = {f.name: f for f in dataclasses.fields(TrainingArguments)}
    rows = []
    for field in dataclasses.fields(cls):
        help_text = field.metadata.get("help")
        if not field.init or help_text is None:
            continue
        if only_new and stock.get(field.name) is field:
            continue
        flags = [f"--{field.name.replace('_', '-')}", *field.metadata.get("aliases", [])]
        flags = [flag for flag in dict.fromkeys(flags) if "_" not in flag]
        help_text = " ".join(str(help_text).split()).replace("|", "\\|")
        rows.append(f"| `{'`, `'.join(flags)}` | {_default(field)} | {help_text} |")
    return rows


def flag_reference_markdown() -> str:
    """One table per argument group; stock TrainingArguments flags are listed only where this project changes them."""
    from data.arguments import DataArguments
    from training.arguments import ModelArguments, MultiTaskTrainingArguments

    parts = []
    for title, cls, only_new in (("Model and losses", ModelArguments, False), ("Data", DataArguments, False),
                                 ("Training (plus every `TrainingArguments` flag)", MultiTaskTrainingArguments, True)):
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
