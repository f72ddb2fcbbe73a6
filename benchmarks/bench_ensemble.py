"""An ensemble of three members against its best member and the plain average, on the demo data.

Trains three members through train_ensemble.py (three seeds by default, or --poolings mean cls attention), then
prints per task the test primary metric of every member, the plain average and the ensemble, the time per member,
and predict.py throughput of the ensemble against one member (each in its own process, 2 threads, alternated).

    python benchmarks/bench_ensemble.py [--rows 8000] [--poolings mean cls attention]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *command], cwd=ROOT, env=ENV, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{command[0]} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start, result.stderr


def throughput(model: Path, texts: Path) -> float:
    _, err = run(["predict.py", "--model", str(model), "--input", str(texts), "--output", str(texts.with_suffix(
        ".out.jsonl")), "--threads", "2", "--progress", "off"])
    return float(err.strip().splitlines()[-1].split("(")[1].split()[0])


def member_minutes(folder: Path) -> float:
    """The member's own training time (from its metrics.json, so it holds when a rerun reuses the member)."""
    history = json.loads((folder / "metrics.json").read_text())["log_history"]
    return next(entry["train_runtime"] for entry in history if "train_runtime" in entry) / 60


def compare_throughput(work: Path, rounds: int = 3) -> None:
    """predict.py on 1,000 demo texts: one member against the ensemble, alternated, medians over `rounds`."""
    from data.demo import demo_csv_path

    texts = work / "texts.txt"
    sample = pd.read_csv(demo_csv_path(), encoding="cp1252", encoding_errors="replace")["text"].sample(1000,
                                                                                                    random_state=0)
    texts.write_text("\n".join(" ".join(str(t).split()) for t in sample) + "\n", encoding="utf-8")
    single, whole = [], []
    for _ in range(rounds):  # each pair runs back to back, so its ratio holds under a load that drifts
        single.append(throughput(work / "ensemble" / "members" / "member-0", texts))
        whole.append(throughput(work / "ensemble", texts))
    ratios = [one / ensemble for one, ensemble in zip(single, whole)]
    print(f"predict.py texts/s (PyTorch, 2 threads, {rounds} alternated pairs): one member "
          f"{[round(v, 1) for v in single]}, ensemble {[round(v, 1) for v in whole]}; ensemble slower by "
          f"{[round(r, 2) for r in ratios]}, median {statistics.median(ratios):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--poolings", nargs="+", default=None, help="members by pooling instead of by seed")
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_ensemble_"))
    members = ([f"pooling={p}" for p in args.poolings] if args.poolings else [f"seed={s}" for s in (1, 2, 3)])
    print(f"load average before: {os.getloadavg()}")
    seconds, _ = run(["train_ensemble.py", *[a for m in members for a in ("--member", m)], "--max-train-samples",
                      str(args.rows), "--max-eval-samples", "2000", "--disable-tqdm", "true", "--report-to", "none",
                      "--output-dir", str(work / "ensemble")])
    summary = json.loads((work / "ensemble" / "ensemble.json").read_text())
    columns = [c for c in next(iter(summary["comparison"].values())) if c != "score"] + ["score"]
    print(f"{'model':<16}" + "".join(f"{c:>14}" for c in columns))
    for model, values in summary["comparison"].items():
        print(f"{model:<16}" + "".join(f"{values[c]:>14.4f}" for c in columns))
    print("weights per task:", {k: [round(w, 3) for w in v] for k, v in summary["weights"].items()})
    folders = sorted((work / "ensemble" / "members").iterdir())
    print(f"whole run {seconds / 60:.1f} min; training time per member (min): "
          f"{[round(member_minutes(f), 1) for f in folders]} (the rest is data preparation, calibration, reports "
          "and the ensemble fit)")
    compare_throughput(work)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
