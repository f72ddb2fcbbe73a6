"""One measurement of the full backbone comparison, run in a process of its own so that its peak memory is its own.

    python -m training.backbone_jobs train JOB.json    # train, evaluate, save (as train_enhanced.py); export int8
    python -m training.backbone_jobs infer JOB.json    # time predict_texts on one back end (PyTorch or ONNX int8)

The job file holds the inputs and where to write the result (JSON). Only the standard library is imported at the
top, and each job imports what it needs, so an inference process loads what `predict.py` loads and nothing of the
training side.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB: the kernel's high-water mark of this process image
    (VmHWM) where there is one, since getrusage's maxrss also counts the parent's memory at the time of the start."""
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.is_file() else []:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def train_job(job: dict) -> dict:
    """Train, evaluate and save through the library (as train_enhanced.py does), then export int8 ONNX.

    Training samples/s counts the rows seen (training rows x epochs trained) over the seconds of building the model
    (which includes the embedding cache's encoder pass when the cache is used) and training.
    """
    from training.backbone_benchmark import CompareArguments
    from training.embedding_cache import cache_plan
    from training.recipe import parse_arguments
    from training.run import build_run, evaluate_and_save, prepare, run_arguments, train_or_resume

    flags = [*job["argv"], "--backbone", job["backbone"], "--output-dir", job["model_dir"]]
    flags += ["--embedding-cache-dir", job["cache_dir"]] if job["cache_dir"] else []
    model_args, data_args, args, _ = parse_arguments(flags, extra=(CompareArguments,))
    setup = prepare(model_args, data_args, args)
    start = time.perf_counter()
    trainer, evaluation = build_run(model_args, args, setup)
    built = time.perf_counter()
    train_or_resume(trainer)
    trained = time.perf_counter()
    peak = peak_rss_mb()
    report = evaluate_and_save(trainer, setup, evaluation, run_arguments(model_args, data_args, args))
    rows = len(setup.data.raw["train"])
    samples = round(rows * (trainer.state.epoch or 0))
    cached = cache_plan(args.cache_embeddings, args.freeze_strategy, model_args.pooling,
                        setup.data.augmenter is not None)[0]
    result = {"score": report["score"], "tasks": task_results(report), "split": report["split"],
              "test_rows": report["n_rows"], "train_rows": rows, "epochs": trainer.state.epoch,
              "train_samples": samples, "build_s": built - start, "train_s": trained - built,
              "train_samples_per_s": samples / max(trained - start, 1e-9),
              "train_only_samples_per_s": samples / max(trained - built, 1e-9), "embedding_cache": cached,
              "peak_rss_train_mb": peak, "model_mb": folder_mb(Path(job["model_dir"]), ("*.safetensors", "*.bin"))}
    return {**result, **export_int8(job["model_dir"], job["onnx_dir"])}


def task_results(report: dict) -> dict:
    """Per task: its primary metric and value, and accuracy where the task has one."""
    from training.metrics import flat_task_metrics

    results = {}
    for name, task in report["tasks"].items():
        metrics, primary = flat_task_metrics(task), report["primary_metrics"][name]
        results[name] = {"metric": primary, "value": metrics.get(primary), "accuracy": metrics.get("accuracy")}
    return results


def export_int8(model_dir: str, onnx_dir: str) -> dict:
    """The int8 ONNX export's size, or the reason it failed (the PyTorch numbers stand either way)."""
    try:
        from inference.onnx_export import export

        report = export(model_dir, onnx_dir, quantize="int8")
    except Exception as error:  # an export failure of one architecture must not lose its other numbers
        return {"onnx_int8_error": " ".join(str(error).split())[:300] or type(error).__name__}
    return {"onnx_int8_mb": report["bytes"] / 1e6}


def folder_mb(folder: Path, patterns: tuple[str, ...]) -> float:
    return sum(f.stat().st_size for p in patterns for f in folder.glob(p)) / 1e6


def infer_job(job: dict) -> dict:
    """Texts/s of `predict_texts` (the predict.py path) on one back end after a warm-up batch, and peak memory."""
    from inference.runner import load_backend, predict_texts

    texts = json.loads(Path(job["texts"]).read_text(encoding="utf-8"))
    backend = load_backend(job["model"], device=job["device"], threads=job["threads"])
    batch = job["batch_size"]
    predict_texts(backend, texts[:batch], batch_size=batch, show_progress=False)
    start = time.perf_counter()
    predict_texts(backend, texts, batch_size=batch, show_progress=False)
    seconds = time.perf_counter() - start
    return {"backend": backend.kind, "texts": len(texts), "seconds": seconds,
            "texts_per_s": len(texts) / max(seconds, 1e-9), "threads": job["threads"], "peak_rss_mb": peak_rss_mb()}


def expected_errors(command: str) -> tuple[type[Exception], ...]:
    """The one-line errors of a job (bad flags, data or model), reported without a traceback."""
    from inference.errors import InputError, ModelLoadError

    if command == "infer":
        return ModelLoadError, InputError
    from data import DataValidationError
    from training.arguments import ArgumentError

    return ArgumentError, DataValidationError, ModelLoadError


def main(argv: list[str]) -> int:
    """Run the job named by `argv` (COMMAND JOB.json) and write its result file."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    command, job_file = argv
    job = json.loads(Path(job_file).read_text(encoding="utf-8"))
    try:
        result = {"train": train_job, "infer": infer_job}[command](job)
    except expected_errors(command) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from inference.io import write_text_atomic

    write_text_atomic(job["result"], json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
