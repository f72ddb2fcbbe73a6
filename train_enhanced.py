"""Train one shared encoder with one head per task, then calibrate, report and save.

    python train_enhanced.py                                   # demo tweets, packaged MiniLM, CPU-friendly defaults
    accelerate launch train_enhanced.py --freeze-strategy partial
    python train_enhanced.py --tasks-file examples/goemotions_emobank.yaml --weighted-sampling emotions
    python train_enhanced.py --config run.yaml --epochs 3      # a YAML/JSON file of flags; flags on the line win

Every flag is listed by `--help` and in the README's flag reference.
"""

from __future__ import annotations

import logging
import sys

import transformers

from data import DataValidationError
from training.arguments import ArgumentError
from training.recipe import parse_arguments
from training.run import evaluate_and_save, fit, format_summary, prepare, run_arguments


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.logging.set_verbosity_warning()
    try:
        model_args, data_args, training_args = parse_arguments(argv)
        setup = prepare(model_args, data_args, training_args)
    except (ArgumentError, DataValidationError) as error:
        print(f"train_enhanced.py: error: {error}", file=sys.stderr)
        return 2
    trainer, evaluation = fit(model_args, training_args, setup)
    report = evaluate_and_save(trainer, setup, evaluation, run_arguments(model_args, data_args, training_args))
    if trainer.is_world_process_zero():
        print(format_summary(report))
        print(f"Saved model, tokenizer, metrics.json, report.md and plots to {training_args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
