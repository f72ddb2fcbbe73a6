"""Task-weighting strategies on the GoEmotions + EmoBank merge, one training run each on the same subset.

Variants: fixed, uncertainty, inverse_variance, dwa, and a curriculum (VAD weight ramping from 0 to 1 over the
first half of training). Prints emotions macro F1 (fitted thresholds) and VAD mean Pearson on test per variant.

    python benchmarks/bench_balancing.py [--rows 6000] [--epochs 1] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "fixed": [],
    "uncertainty": ["--loss-weighting", "uncertainty"],
    "inverse_variance": ["--loss-weighting", "inverse_variance", "--loss-weighting-interval", "50"],
    "dwa": ["--loss-weighting", "dwa", "--loss-weighting-interval", "50"],
    "curriculum": ["--task-weight-schedule", "vad=0:0,0.5:1"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None, help="training seed of every variant")
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_balancing_"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    print(f"load average before: {os.getloadavg()}")
    print(f"{'variant':<18}{'emotions macro F1':>18}{'VAD mean Pearson':>18}{'minutes':>9}")
    for name, flags in VARIANTS.items():
        start = time.perf_counter()
        command = [sys.executable, "train_enhanced.py", "--tasks-file", "examples/goemotions_emobank.yaml",
                   "--max-train-samples", str(args.rows), "--max-eval-samples", "3000", "--epochs",
                   str(args.epochs), "--disable-tqdm", "true", "--report-to", "none", "--output-dir",
                   str(work / name), *flags, *(["--seed", str(args.seed)] if args.seed is not None else [])]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"{name} failed:\n{result.stderr[-3000:]}")
        tasks = json.loads((work / name / "metrics.json").read_text())["tasks"]
        f1 = tasks["emotions"]["at_fitted"]["macro_f1"]
        pearson = tasks["vad"]["metrics"]["pearson"]
        print(f"{name:<18}{f1:>18.4f}{pearson:>18.4f}{(time.perf_counter() - start) / 60:>9.1f}", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
