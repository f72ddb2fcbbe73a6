"""Training throughput: our MultiTaskTrainer against the stock recipe, side by side in one process.

Stock recipe: `AutoModelForSequenceClassification` + `Trainer` + `DataCollatorWithPadding`. Both sides use the same
backbone (packaged all-MiniLM-L6-v2), the same rows in the same order, batch size, dynamic padding and optimizer.
Warm-up steps are excluded from the timing; rounds alternate between the two sides to share any machine noise.

    python benchmarks/bench_training.py [--rows 384] [--steps 10] [--rounds 2]

Targets (issue 4): one task >= 0.95x the stock samples/s; three tasks in one multi-task run >= 2.5x faster than
three stock runs (one per task).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from datasets import Value  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from data import DataArguments, prepare_data  # noqa: E402
from training.arguments import ModelArguments, MultiTaskTrainingArguments  # noqa: E402
from training.recipe import build_model, build_trainer, resolve_backbone  # noqa: E402

WARMUP_STEPS = 2


class StepClock(TrainerCallback):
    """Wall time from the end of the warm-up steps to the end of the last step."""

    def __init__(self):
        self.start = self.end = None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == WARMUP_STEPS:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def common_args(output_dir: str, steps: int, batch: int) -> dict:
    return dict(output_dir=output_dir, max_steps=steps + WARMUP_STEPS, per_device_train_batch_size=batch,
                learning_rate=5e-5, warmup_steps=0, eval_strategy="no", save_strategy="no", report_to="none",
                logging_strategy="no", disable_tqdm=True, use_cpu=True, seed=0, dataloader_num_workers=0)


def timed(trainer, steps: int, batch: int) -> float:
    clock = StepClock()
    trainer.add_callback(clock)
    trainer.train()
    return steps * batch / (clock.end - clock.start)


def stock_run(backbone, tokenizer, rows, column: str, num_labels: int, steps: int, batch: int, tmp: str) -> float:
    """samples/s of the stock recipe on one task."""
    problem = "regression" if num_labels == 1 else "single_label_classification"
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=num_labels, problem_type=problem)
    dataset = rows.select_columns(["input_ids", "attention_mask", column]).rename_column(column, "labels")
    if num_labels == 1:
        dataset = dataset.map(lambda row: {"labels": float(row["labels"][0])})
    else:
        dataset = dataset.cast_column("labels", Value("int64"))
    trainer = Trainer(model=model, args=TrainingArguments(**common_args(tmp, steps, batch)), train_dataset=dataset,
                      data_collator=DataCollatorWithPadding(tokenizer))
    return timed(trainer, steps, batch)


def multitask_run(backbone, tokenizer, data, rows, tasks: list[dict], steps: int, batch: int, tmp: str) -> float:
    """samples/s of our MultiTaskTrainer with `tasks`."""
    model = build_model(ModelArguments(), tasks, backbone)
    keep = ["input_ids", "attention_mask", *(f"labels_{t['name']}" for t in tasks)]
    args = MultiTaskTrainingArguments(**common_args(tmp, steps, batch), patience=None, load_best_model_at_end=False,
                                      freeze_strategy="none", head_lr=None, train_sampling_strategy="random")
    trainer = build_trainer(model, args, rows.select_columns(keep), None, data.collator)
    return timed(trainer, steps, batch)


def load_rows(tokenizer, n: int):
    """Demo rows with every label present (so the stock regression run has targets), plus a derived binary task."""
    data = prepare_data(DataArguments(max_train_samples=4 * n), tokenizer, seed=0)
    train = data.tokenized["train"]
    train = train.filter(lambda row: row["labels_confidence"][0] == row["labels_confidence"][0])
    train = train.select(range(n)).map(lambda row: {"labels_polar": float(row["labels_sentiment"] != 1)})
    return data, train


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=384)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tmp", default="/tmp/bench_training")
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()
    backbone = resolve_backbone("minilm")
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    data, rows = load_rows(tokenizer, args.rows)
    tasks = {t["name"]: t for t in data.task_dicts()}
    tasks["polar"] = {"name": "polar", "type": "binary", "labels": ["neutral", "polar"]}
    run = dict(steps=args.steps, batch=args.batch_size, tmp=args.tmp)
    results: dict[str, list[float]] = {k: [] for k in ("stock_sentiment", "stock_confidence", "stock_polar",
                                                         "ours_1task", "ours_3tasks")}
    for round_ in range(args.rounds):
        print(f"round {round_ + 1}/{args.rounds} (torch threads: {torch.get_num_threads()})", flush=True)
        pair = [("stock_sentiment", lambda: stock_run(backbone, tokenizer, rows, "labels_sentiment", 3, **run)),
                ("ours_1task", lambda: multitask_run(backbone, tokenizer, data, rows, [tasks["sentiment"]], **run))]
        for name, measure in pair[::1 if round_ % 2 == 0 else -1]:  # alternate which side goes first
            results[name].append(measure())
        results["stock_confidence"].append(stock_run(backbone, tokenizer, rows, "labels_confidence", 1, **run))
        results["stock_polar"].append(stock_run(backbone, tokenizer, rows, "labels_polar", 2, **run))
        three = [tasks["sentiment"], tasks["confidence"], tasks["polar"]]
        results["ours_3tasks"].append(multitask_run(backbone, tokenizer, data, rows, three, **run))
    report(results, args)
    return 0


def report(results: dict[str, list[float]], args) -> None:
    speed = {name: statistics.median(values) for name, values in results.items()}
    print(f"\nsamples/s (median of {args.rounds} rounds, {args.steps} timed steps of {args.batch_size} rows each)")
    for name, value in speed.items():
        print(f"  {name:<18} {value:8.2f}")
    one_task = speed["ours_1task"] / speed["stock_sentiment"]
    stock_three = sum(1.0 / speed[k] for k in ("stock_sentiment", "stock_confidence", "stock_polar"))
    three_tasks = stock_three / (1.0 / speed["ours_3tasks"])
    print(f"\none task:    ours / stock samples/s              = {one_task:.3f}x  (target >= 0.95x)")
    print(f"three tasks: three stock runs / one multi-task run = {three_tasks:.3f}x  (target >= 2.5x)")


if __name__ == "__main__":
    sys.exit(main())
