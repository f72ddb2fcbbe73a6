"""Frozen-encoder embedding cache: epoch times with and without it, against a fine-tuning epoch, in one run.

Each mode runs in its own process (so its peak memory is its own), through the library functions that
train_enhanced.py uses, on the demo data with the packaged MiniLM:

  cached-cold   --freeze-strategy full, empty cache folder: the cache is built, then the epochs run on it
  cached-warm   the same again: the cache is reused
  uncached      --freeze-strategy full --cache-embeddings off: the frozen encoder runs every epoch
  finetune      the default recipe (partial freezing), one epoch

    python benchmarks/bench_embedding_cache.py [--rows N] [--epochs 3] [--uncached-epochs 3]

Goals (issue 11): an epoch on the cache >= 50x faster than a fine-tuning epoch; a warm run's first epoch as fast
as its later ones; the cached and uncached runs equal (metrics within 1e-4, head weights within float tolerance)
when they run the same epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_mode(mode: str, epochs: int, rows: int | None, work: Path) -> dict:
    """One training run in this process: per-epoch seconds, cache build seconds, peak RSS, test metrics."""
    from transformers import TrainerCallback

    from training.recipe import parse_arguments
    from training.run import build_run, evaluate_and_save, prepare, run_arguments

    class EpochClock(TrainerCallback):
        def __init__(self):
            self.seconds, self.start = [], None

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.start)

    flags = ["--epochs", str(epochs), "--output-dir", str(work / mode), "--embedding-cache-dir", str(work / "cache"),
             "--disable-tqdm", "true", "--report-to", "none", "--save-strategy", "no", "--eval-strategy", "no",
             "--load-best-model-at-end", "false", "--logging-steps", "1000"]
    flags += {"finetune": [], "uncached": ["--freeze-strategy", "full", "--cache-embeddings", "off"]}.get(
        mode, ["--freeze-strategy", "full", "--cache-embeddings", "on"])
    if rows:
        flags += ["--max-train-samples", str(rows), "--max-eval-samples", str(max(rows // 8, 64))]
    model_args, data_args, training_args = parse_arguments(flags)
    setup = prepare(model_args, data_args, training_args)
    start = time.perf_counter()
    trainer, evaluation = build_run(model_args, training_args, setup)
    build_seconds = time.perf_counter() - start
    clock = EpochClock()
    trainer.add_callback(clock)
    trainer.train()
    report = evaluate_and_save(trainer, setup, evaluation, run_arguments(model_args, data_args, training_args))
    return {"mode": mode, "rows": len(setup.data.raw["train"]), "epoch_seconds": clock.seconds,
            "build_seconds": build_seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "score": report["score"], "cache_mb": folder_mb(work / "cache")}


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6 if path.is_dir() else 0.0


def head_difference(work: Path) -> float | None:
    """Largest |cached - uncached| over the head, pooling and task-weight tensors of the two saved models."""
    from safetensors.torch import load_file

    paths = [work / mode / "model.safetensors" for mode in ("cached-cold", "uncached")]
    if not all(p.is_file() for p in paths):
        return None
    cached, uncached = (load_file(p) for p in paths)
    return max(float((cached[k] - uncached[k]).abs().max()) for k in cached if not k.startswith("encoder."))


def spawn(mode: str, args: argparse.Namespace, work: Path) -> dict:
    epochs = {"finetune": 1, "uncached": args.uncached_epochs}.get(mode, args.epochs)
    command = [sys.executable, __file__, "--mode", mode, "--epochs", str(epochs), "--work", str(work)]
    if args.rows:
        command += ["--rows", str(args.rows)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"{mode} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def summarise(results: dict[str, dict], work: Path, epochs: int) -> None:
    finetune = results["finetune"]["epoch_seconds"][0]
    cold, warm = results["cached-cold"], results["cached-warm"]
    uncached = statistics.median(results["uncached"]["epoch_seconds"])
    print(f"{'mode':<12} {'rows':>6} {'build s':>8} {'epoch s (each)':<28} {'peak RSS MB':>11} {'test score':>10}")
    for mode, r in results.items():
        epochs_text = " ".join(f"{s:.1f}" for s in r["epoch_seconds"])
        print(f"{mode:<12} {r['rows']:>6} {r['build_seconds']:>8.1f} {epochs_text:<28} {r['peak_rss_mb']:>11.0f} "
              f"{r['score']:>10.4f}")
    later = statistics.median(cold["epoch_seconds"][1:] or cold["epoch_seconds"])
    print(f"cache on disk: {cold['cache_mb']:.1f} MB (all splits)")
    print(f"fine-tuning epoch / cached epoch        = {finetune / later:.1f}x  (goal >= 50x)")
    print(f"uncached frozen epoch / cached epoch    = {uncached / later:.1f}x")
    warm_later = statistics.median(warm["epoch_seconds"][1:] or warm["epoch_seconds"])
    print(f"warm run: first epoch / later epochs     = {warm['epoch_seconds'][0] / warm_later:.2f}x  (goal ~1x)")
    print(f"cold run: cache build + epochs / uncached epochs = "
          f"{(cold['build_seconds'] + sum(cold['epoch_seconds'])) / sum(results['uncached']['epoch_seconds']):.2f}x "
          f"(same number of epochs only when --uncached-epochs = --epochs)")
    if len(results["uncached"]["epoch_seconds"]) == epochs:
        print(f"cached vs uncached: test score {cold['score']:.6f} vs {results['uncached']['score']:.6f} "
              f"(|diff| {abs(cold['score'] - results['uncached']['score']):.2e}); largest head-weight difference "
              f"{head_difference(work):.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="training rows (default: the whole demo split)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the cached runs")
    parser.add_argument("--uncached-epochs", type=int, default=3, help="epochs of the uncached frozen run")
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.epochs, args.rows, Path(args.work))))
        return
    print(f"load average before: {os.getloadavg()}")
    work = Path(tempfile.mkdtemp(prefix="bench_cache_"))
    try:
        results = {mode: spawn(mode, args, work) for mode in ("cached-cold", "cached-warm", "uncached", "finetune")}
        summarise(results, work, args.epochs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
