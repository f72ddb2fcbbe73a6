"""Compare encoders: quick (configs only: sizes, exact parameters, compute per token; no weights, works offline) or
full (accuracy per task, training and inference speed, peak memory, size on disk, measured here on your data).

    python compare_backbones.py                                     # the six defaults, quick
    python compare_backbones.py --backbones defaults my-org/encoder ./my_encoder
    python compare_backbones.py --full --backbones minilm minilm@3 minilm@4 --freeze-strategy full
    python compare_backbones.py --full --train-file data.csv --task label:multiclass --epochs 2 --remeasure

A backbone is a Hub id, a local model folder, minilm (the packaged all-MiniLM-L6-v2) or SPEC@N (SPEC's first N
layers). Every flag of train_enhanced.py sets the training of the full comparison, the same for every backbone.
Writes OUTPUT/comparison.json, OUTPUT/comparison.md and (full) OUTPUT/accuracy_vs_speed.png, and one folder per
measured backbone; a rerun reuses backbones already measured with the same settings. Exit code 2 when nothing
could be compared.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import transformers

from data import DataValidationError
from training.arguments import ArgumentError
from training.backbone_benchmark import CompareArguments, compare_full, machine_info, measurement_settings
from training.backbone_report import format_table, summarise, write_outputs
from training.backbones import compare_quick, expand_specs
from training.recipe import parse_arguments

DEFAULT_OUTPUT = "outputs/compare_backbones"
QUICK_FLAGS = ("--backbones", "--output-dir", "--max-length", "--full")  # all the quick comparison reads


def parse(argv: list[str]):
    """Flags -> (model, data, training, compare arguments); `--backbone` (one encoder) is refused for --backbones."""
    if any(a == "--backbone" or a.startswith("--backbone=") for a in argv):
        raise ArgumentError("--backbone trains one encoder; to compare, give --backbones SPEC [SPEC ...]")
    if not any(a == "--output-dir" or a.startswith("--output-dir=") for a in argv):
        argv = [*argv, "--output-dir", DEFAULT_OUTPUT]
    parsed = parse_arguments(argv, extra=(CompareArguments,))
    ignored = [a.split("=")[0] for a in argv if a.startswith("--") and a.split("=")[0] not in QUICK_FLAGS]
    if ignored and not parsed[-1].full:
        raise ArgumentError(f"{ignored[0]} applies to --full only: the quick comparison reads configs, it trains and "
                            "times nothing")
    return argv, parsed


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    started = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv, (model_args, data_args, training_args, compare) = parse(argv)
        specs = expand_specs(compare.backbones)
        machine = machine_info()
        if compare.full:
            rows = compare_full(specs, argv, model_args, data_args, training_args, compare)
            settings = measurement_settings(model_args, data_args, training_args, compare)
        else:
            rows, settings = compare_quick(specs, data_args.max_length), None
    except (ArgumentError, DataValidationError) as error:
        print(f"compare_backbones.py: error: {error}", file=sys.stderr)
        return 2
    mode = "full" if compare.full else "quick"
    summary = summarise(mode, rows, machine, settings, time.perf_counter() - started)
    files = write_outputs(summary, Path(training_args.output_dir))
    print(format_table(summary))
    print(f"wrote {', '.join(str(f) for f in files)} ({summary['wall_s']:.1f} s)")
    if not any(row.get("status") == "ok" for row in rows):
        print("compare_backbones.py: error: no backbone could be compared", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
