"""Inference benchmark: predict.py throughput and sentiment macro-F1 for PyTorch fp32, ONNX fp32 and ONNX int8.

Each back end runs `predict.py` in its own process (never two runtimes in one process), on the demo tweets' test
split (the same split `prepare_data` makes with the default demo arguments and seed 42), with a fixed number of CPU
threads and batch size 32. Throughput is texts per second of the prediction loop (tokenization, forward, decoding);
the wall time of the whole process (imports and model loading included) is shown too.

    python benchmarks/bench_inference.py --model outputs/demo-model
    python benchmarks/bench_inference.py --model /tmp/untrained --make-untrained   # speed only, F1 meaningless
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
SUMMARY = re.compile(r"predicted (\d+) texts with (\w+) in ([0-9.]+)s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="saved model folder with a 'sentiment' multiclass task")
    parser.add_argument("--work-dir", default="outputs/bench_inference", help="exports, inputs and predictions")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per back end (default: 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, help="use only the first N test texts")
    parser.add_argument("--seed", type=int, default=42, help="split seed of the demo data (default: 42)")
    parser.add_argument("--make-untrained", action="store_true",
                        help="first save an UNTRAINED MiniLM model with the demo tasks at --model (speed check only)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    return parser.parse_args(argv)


def demo_test_split(seed: int, limit: int | None) -> tuple[list[str], np.ndarray, list[str]]:
    """Texts, gold sentiment indices and label names of the demo test split (rows without a label dropped)."""
    from data.demo import DEMO_LABELS, default_demo_args
    from data.pipeline import collect_rows, resolve_tasks

    args = default_demo_args()
    tasks, tasks_file = resolve_tasks(args)
    test = collect_rows(args, tasks, tasks_file, seed, [])["test"]
    gold = np.asarray(test.labels["labels_sentiment"])
    keep = [i for i, g in enumerate(gold) if g >= 0][:limit]
    return [test.texts[i] for i in keep], gold[keep], list(DEMO_LABELS)


def make_untrained_model(folder: Path) -> None:
    """MiniLM encoder with fresh demo heads (sentiment + confidence), saved with its tokenizer."""
    from transformers import AutoTokenizer

    from data.demo import DEMO_LABELS, default_backbone_path
    from modeling import MultiTaskModel

    tasks = [{"name": "sentiment", "type": "multiclass", "labels": list(DEMO_LABELS)},
             {"name": "confidence", "type": "regression", "labels": ["confidence"], "output_range": [0.0, 1.0]}]
    model = MultiTaskModel.from_backbone(default_backbone_path(), tasks=tasks)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(default_backbone_path()).save_pretrained(folder)


def run(cmd: list[str], threads: int) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stderr[-2000:]}")
    return result, time.perf_counter() - start


def export(model: str, target: Path, quantize: bool, threads: int) -> None:
    cmd = [sys.executable, str(REPO_ROOT / "export_onnx.py"), "--model", model, "--output", str(target)]
    result, _ = run(cmd + (["--quantize", "int8"] if quantize else []), threads)
    print(result.stdout.strip())


def predict(model: str, source: Path, output: Path, args: argparse.Namespace) -> dict:
    """One predict.py process; throughput from its summary line, wall time measured here."""
    cmd = [sys.executable, str(REPO_ROOT / "predict.py"), "--model", model, "--input", str(source), "--output",
           str(output), "--batch-size", str(args.batch_size), "--threads", str(args.threads), "--progress", "off"]
    result, wall = run(cmd, args.threads)
    match = SUMMARY.search(result.stderr)
    n, kind, seconds = int(match.group(1)), match.group(2), float(match.group(3))
    return {"backend": kind, "texts": n, "predict_s": seconds, "texts_per_s": n / seconds, "process_wall_s": wall}


def macro_f1(output: Path, gold: np.ndarray, labels: list[str]) -> float:
    from sklearn.metrics import f1_score

    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    predicted = [labels.index(r["sentiment"]["label"]) for r in rows]
    return float(f1_score(gold, predicted, average="macro", labels=list(range(len(labels)))))


def table(results: dict[str, dict]) -> str:
    lines = [f"{'back end':<14}{'texts/s':>10}{'predict s':>11}{'process s':>11}{'macro-F1':>10}{'size MB':>9}"]
    for name, r in results.items():
        lines.append(f"{name:<14}{r['texts_per_s']:>10.1f}{r['predict_s']:>11.2f}{r['process_wall_s']:>11.2f}"
                     f"{r['macro_f1'] * 100:>10.2f}{r['size_mb']:>9.1f}")
    return "\n".join(lines)


def folder_size_mb(path: Path) -> float:
    files = [path] if path.is_file() else list(path.glob("*.safetensors")) + list(path.glob("*.onnx"))
    return sum(f.stat().st_size for f in files) / 1e6


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model, work = Path(args.model), Path(args.work_dir)
    if args.make_untrained:
        make_untrained_model(model)
    work.mkdir(parents=True, exist_ok=True)
    texts, gold, labels = demo_test_split(args.seed, args.limit)
    source = work / "test.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    export(str(model), work / "onnx_fp32", quantize=False, threads=args.threads)
    export(str(model), work / "onnx_int8", quantize=True, threads=args.threads)
    results = {}
    targets = {"pytorch_fp32": model, "onnx_fp32": work / "onnx_fp32", "onnx_int8": work / "onnx_int8"}
    for name, target in targets.items():
        output = work / f"pred_{name}.jsonl"
        results[name] = predict(str(target), source, output, args)
        results[name]["macro_f1"] = macro_f1(output, gold, labels)
        results[name]["size_mb"] = folder_size_mb(target)
    base, int8 = results["pytorch_fp32"], results["onnx_int8"]
    print(f"\n{len(texts)} demo test tweets, batch {args.batch_size}, {args.threads} threads, model {model}"
          + (" (UNTRAINED: macro-F1 is meaningless)" if args.make_untrained else ""))
    print(table(results))
    print(f"onnx_int8 / pytorch_fp32 throughput: {int8['texts_per_s'] / base['texts_per_s']:.2f}x; "
          f"onnx_fp32 / pytorch_fp32: {results['onnx_fp32']['texts_per_s'] / base['texts_per_s']:.2f}x; "
          f"macro-F1 drop int8 vs PyTorch: {(base['macro_f1'] - int8['macro_f1']) * 100:.2f} points")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
