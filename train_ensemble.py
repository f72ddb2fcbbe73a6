"""Train several multi-task models (or take saved ones) and combine them into one, weighted per task.

    python train_ensemble.py --member "seed=1" --member "seed=2" --member "seed=3" --output-dir outputs/ensemble
    python train_ensemble.py --members-file members.yaml --epochs 2            # shared flags apply to every member
    python train_ensemble.py --cv-folds 5 --output-dir outputs/cv              # k-fold members + out-of-fold scores
    python train_ensemble.py --from-models outputs/a outputs/b --output-dir outputs/ab

Every other flag is a train_enhanced.py flag shared by all members. The output folder is one model that
`from_pretrained`, predict.py, the pipeline and export_onnx.py take like any other (members included), with
ensemble.json / ensemble.md (members, plain average and ensemble on test; the weights) and the members' folders.
A rerun reuses every member whose folder is complete.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import transformers
from transformers import HfArgumentParser

from data import DataValidationError
from training.arguments import ArgumentError
from training.ensemble_build import run_ensemble
from training.ensemble_run import EnsembleArguments

DEFAULT_OUTPUT = "outputs/ensemble"


def split_output_dir(argv: list[str]) -> tuple[list[str], Path]:
    """(the other flags, --output-dir): the members go below the ensemble's own folder."""
    rest, output = [], DEFAULT_OUTPUT
    items = iter(argv)
    for item in items:
        if item == "--output-dir":
            output = next(items, output)
        elif item.startswith("--output-dir="):
            output = item.split("=", 1)[1]
        else:
            rest.append(item)
    return rest, Path(output)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.logging.set_verbosity_error()
    argv, output_dir = split_output_dir(list(sys.argv[1:] if argv is None else argv))
    try:
        ensemble_args, shared = HfArgumentParser(EnsembleArguments).parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True)
        summary = run_ensemble(ensemble_args, shared, output_dir)
    except (ArgumentError, DataValidationError) as error:
        print(f"train_ensemble.py: error: {error}", file=sys.stderr)
        return 2
    for model, values in summary["comparison"].items():
        print(f"{model:<16} score {values['score']:.4f}  " + "  ".join(
            f"{k} {v:.4f}" for k, v in values.items() if k != "score" and v is not None))
    print(f"Saved the ensemble (members, weights, calibration, reports) to {output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
