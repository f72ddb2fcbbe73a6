"""Predict every task of a saved multi-task model (folder, Hub id or ONNX export) for texts from a file, stdin or
--text, and write JSONL (default, stdout when --output is absent) or CSV/TSV.

    python predict.py --model outputs/model --input tweets.csv --text-column text --output predictions.csv
    echo "what a day" | python predict.py --model outputs/onnx-int8
"""

from __future__ import annotations

import argparse
import sys
import time

from inference.errors import InputError, ModelLoadError
from inference.io import collect_texts, output_format, write_predictions
from inference.runner import load_backend, predict_texts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="saved model folder, Hub id, .onnx file or ONNX export folder")
    parser.add_argument("--input", help="CSV, TSV, JSONL/NDJSON, JSON or TXT (one text per line); '-' = stdin")
    parser.add_argument("--text", action="append", help="a text to classify (repeatable)")
    parser.add_argument("--text-column", help="text column/field of CSV, TSV and JSON(L) inputs (default: text)")
    parser.add_argument("--output", help="output file (.jsonl, .ndjson, .csv or .tsv); JSONL on stdout when absent")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")
    parser.add_argument("--max-length", type=int, help="truncate texts to this many tokens (default: model limit)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (default: auto)")
    parser.add_argument("--threads", type=int, help="CPU threads for PyTorch / ONNX Runtime (default: library's)")
    parser.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                        help="progress bar on stderr (auto: on for 512+ texts)")
    parser.add_argument("--mc-dropout", type=int, default=0, metavar="N",
                        help="N stochastic passes with dropout on: mean and standard deviation per task (PyTorch "
                             "back end only; default: off)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --mc-dropout passes (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no summary line on stderr")
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """Flag values that argparse cannot check on its own."""
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.max_length is not None and args.max_length < 2:
        raise InputError(f"--max-length must be >= 2, got {args.max_length}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be >= 1, got {args.threads}")
    if args.mc_dropout < 0:
        raise InputError(f"--mc-dropout must be >= 1 passes (or 0: off), got {args.mc_dropout}")
    output_format(args.output)


def run(args: argparse.Namespace) -> None:
    """Read texts, load the model, predict in length-sorted batches, write in input order."""
    check_arguments(args)
    texts = collect_texts(args.input, args.text, args.text_column)
    backend = load_backend(args.model, device=args.device, threads=args.threads)
    show = {"auto": None, "on": True, "off": False}[args.progress]
    start = time.perf_counter()
    results = predict_texts(backend, texts, batch_size=args.batch_size, max_length=args.max_length,
                            show_progress=show, mc_dropout=args.mc_dropout, seed=args.seed)
    seconds = time.perf_counter() - start
    write_predictions(texts, results, args.output)
    if not args.quiet:
        rate = len(texts) / seconds if seconds > 0 else float("inf")
        print(f"predicted {len(texts)} texts with {backend.kind} in {seconds:.2f}s ({rate:.1f} texts/s)",
              file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (InputError, ModelLoadError) as err:
        print(f"predict.py: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("predict.py: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
