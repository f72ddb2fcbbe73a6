"""Export a saved multi-task model to ONNX (one output per task head, dynamic batch and sequence axes), check parity
with PyTorch on real texts, optionally quantize to int8; the tokenizer and the model config travel with the export.

    python export_onnx.py --model outputs/model --output outputs/onnx
    python export_onnx.py --model outputs/model --output outputs/onnx-int8 --quantize int8
    python predict.py --model outputs/onnx-int8 --text "what a day"
"""

from __future__ import annotations

import argparse
import sys

from inference.errors import ModelLoadError
from inference.onnx_export import DEFAULT_OPSET, ExportError, export


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="saved model folder or Hub id")
    parser.add_argument("--output", required=True, help="export folder (model.onnx inside) or a path ending in .onnx")
    parser.add_argument("--quantize", choices=["int8"], help="dynamic int8 quantization of the weights")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default: {DEFAULT_OPSET})")
    return parser


def format_report(report: dict) -> str:
    """Human-readable summary: where, how big, max abs difference per task."""
    lines = [f"exported {report['path']} ({report['bytes'] / 1e6:.1f} MB"
             + (f", int8; fp32 was {report['fp32_bytes'] / 1e6:.1f} MB)" if report["quantization"] else ")")]
    for key, title in (("fp32_max_abs_diff", "fp32 vs PyTorch"), ("int8_max_abs_diff", "int8 vs PyTorch")):
        if key in report:
            diffs = ", ".join(f"{task}={value:.2e}" for task, value in report[key].items())
            lines.append(f"max abs diff {title}: {max(report[key].values()):.2e} ({diffs})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = export(args.model, args.output, quantize=args.quantize, opset=args.opset)
    except (ModelLoadError, ExportError) as err:
        print(f"export_onnx.py: error: {err}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
