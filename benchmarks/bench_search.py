"""Hyperparameter search on the demo data against train_enhanced.py's defaults on the same split.

Runs `hyperparameter_search.py` (default space, Hyperband pruning) on a training subset, then `train_enhanced.py`
with its defaults on the same rows, and prints: the best trial's test score against the defaults' test score,
seconds per trial, the pruned fraction, and the process memory after each trial (it should not grow).

    python benchmarks/bench_search.py [--rows 4000] [--trials 20]
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


def run(command: list[str]) -> float:
    start = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{command[0]} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--work", default=None, help="output folder (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_search_"))
    data = ["--max-train-samples", str(args.rows), "--max-eval-samples", "1000", "--disable-tqdm", "true",
            "--report-to", "none"]
    print(f"load average before: {os.getloadavg()}")
    search_seconds = run(["hyperparameter_search.py", *data, "--n-trials", str(args.trials), "--output-dir",
                          str(work / "search")])
    default_seconds = run(["train_enhanced.py", *data, "--output-dir", str(work / "defaults")])
    trials = pd.read_csv(work / "search" / "trials.csv")
    if "user_attrs_skipped" in trials:
        trials = trials[trials["user_attrs_skipped"].isna()]
    best = json.loads((work / "search" / "best" / "metrics.json").read_text())
    default = json.loads((work / "defaults" / "metrics.json").read_text())
    pruned = (trials["state"] == "PRUNED").mean()
    per_trial = statistics.median(trials["user_attrs_seconds"])
    print(f"search: {len(trials)} trials in {search_seconds / 60:.1f} min; median {per_trial:.0f} s per trial; "
          f"{pruned:.0%} pruned")
    print(f"process memory after each trial (MB): {trials['user_attrs_rss_mb'].tolist()}")
    print(f"test score: best trial {best['score']:.4f} vs train_enhanced.py defaults {default['score']:.4f} "
          f"({default_seconds / 60:.1f} min); best trial = {json.loads((work / 'search' / 'best.json').read_text())}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
