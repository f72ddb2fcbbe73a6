"""Evaluate a saved multi-task model on a labelled file, without training.

    python evaluate_model.py --model DIR --test-file FILE [--text-column text] [--output-dir DIR] [--batch-size 32]

Uses the thresholds and temperatures stored in the model's config (fitted after training on a calibration split)
and writes metrics.json, report.md and plots/ into the output folder (default: DIR/evaluation).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from data.collator import MultiTaskCollator
from inference.errors import ModelLoadError
from inference.loading import load_model
from modeling.serving import serving_max_length
from training.evaluation import evaluate_split, read_labelled_file, tokenize_dataset
from training.reporting import write_reports


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="Folder of a saved MultiTaskModel and its tokenizer.")
    parser.add_argument("--test-file", required=True, help="Labelled CSV, TSV, JSON, JSONL, Parquet or saved folder.")
    parser.add_argument("--text-column", default="text", help="Column holding the input text (default: text).")
    parser.add_argument("--output-dir", default=None, help="Where to write the reports (default: MODEL/evaluation).")
    parser.add_argument("--batch-size", type=int, default=32, help="Prediction batch size (default: 32).")
    parser.add_argument("--max-length", type=int, default=None,
                        help="Truncate texts to this many tokens (default and upper bound: the model's training "
                             "max_length, stored in its config).")
    parser.add_argument("--column", action="append", default=[], metavar="TASK=COL[,COL...]",
                        help="Label column(s) of a task when they are not named after the task (or its labels/"
                             "outputs); repeatable.")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu).")
    return parser.parse_args(argv)


def parse_columns(values: list[str]) -> dict[str, list[str]]:
    """`TASK=COL[,COL...]` flags as {task: [columns]}."""
    out = {}
    for value in values:
        task, sep, cols = value.partition("=")
        names = [c.strip() for c in cols.split(",") if c.strip()]
        if not sep or not task.strip() or not names:
            raise ValueError(f"--column {value!r}: expected TASK=COL[,COL...]")
        out[task.strip()] = names
    return out


def quiet_progress_bars() -> None:
    """No progress bars on stderr, so that an error is the only line there."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_progress_bars()
    try:
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
        if not Path(args.test_file).exists():
            raise ValueError(f"--test-file {args.test_file}: file not found")
        columns = parse_columns(args.column)
        loaded = load_model(args.model, args.device)
        model, tokenizer = loaded.model, loaded.tokenizer
        raw, notes = read_labelled_file(args.test_file, model.config.tasks, args.text_column, columns)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        trained = serving_max_length(model.config.to_dict(), tokenizer)
        dataset = tokenize_dataset(raw, tokenizer, min(args.max_length or trained, trained))
        collator = MultiTaskCollator(tokenizer, model.config.tasks)
        split = Path(args.test_file).name
        report, logits, labels = evaluate_split(model, dataset, collator, args.batch_size, split=split)
        output_dir = Path(args.output_dir or Path(args.model) / "evaluation")
        files = write_reports(output_dir, report, None, logits, labels)
    except (ValueError, OSError, ModelLoadError) as err:
        print(f"evaluate_model.py: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print(f"score {report['score']} (at stored thresholds); wrote {len(files)} files to {output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
