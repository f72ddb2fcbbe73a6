"""The full backbone comparison: each backbone with weights at hand trained on the same data with the same budget,
then timed at inference, every step in its own process so that peak memory is per backbone and per back end.

Per backbone, in OUTPUT/<slug>/: `encoder/` (a derived SPEC@N backbone's weights), `model/` (the trained model,
through the same `prepare`, `build_run`, `train_or_resume` and `evaluate_and_save` as train_enhanced.py),
`onnx_int8/` (its int8 export), one log per process, and `result.json`, written as soon as the backbone is measured:
a rerun with the same settings reuses it unless `--remeasure`.

Training samples/s is rows seen (training rows x epochs trained) over the seconds of building the model (which
includes the encoder pass of the embedding cache when the cache is used) and training. Inference texts/s is
`predict_texts` (the predict.py path: length-sorted batches, tokenization, forward pass, decoding) over the test
texts after one warm-up batch, PyTorch and ONNX int8 each in a fresh process (`training/backbone_jobs.py`). A
backbone whose training or PyTorch timing fails is a row with the reason and is measured again by the next run; a
failed int8 export or timing leaves the other numbers standing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from training.arguments import ArgumentError
from training.backbones import (
    Backbone,
    BackboneUnavailable,
    describe,
    materialise,
    resolve,
    tokenizer_location,
    tokenizer_source,
    weights_location,
)
from training.reporting import to_jsonable, write_json_atomic

logger = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
             "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
BACKENDS = ("pytorch", "onnx_int8")


@dataclass
class CompareArguments:
    """What to compare and how to time it; every other flag is a flag of train_enhanced.py (full mode)."""

    backbones: list[str] | None = field(default=None, metadata={
        "help": "Backbones: Hub ids, local model folders, minilm (the packaged all-MiniLM-L6-v2) or SPEC@N (SPEC "
                "cut to its first N layers); 'defaults' stands for the default six. Default: the default six."})
    full: bool = field(default=False, metadata={
        "help": "Full comparison: train every backbone whose weights are at hand on your data (the demo by default) "
                "and time it. Default: the quick comparison (configs only, no weights)."})
    remeasure: bool = field(default=False, metadata={"help": "Measure again backbones already measured in the "
                                                             "output folder with the same settings."})
    inference_texts: int = field(default=1000, metadata={"help": "Test texts timed at inference (0: all)."})
    inference_batch_size: int = field(default=32, metadata={"help": "Batch size of the inference timing."})
    inference_threads: int | None = field(default=None, metadata={"help": "CPU threads of the inference timing "
                                                                          "(default: all cores)."})
    inference_device: str = field(default="cpu", metadata={"help": "Device of the inference timing."})

    def __post_init__(self):
        if self.inference_texts < 0 or self.inference_batch_size < 1:
            raise ArgumentError("--inference-texts must be >= 0 and --inference-batch-size >= 1")
        if self.inference_threads is None:
            self.inference_threads = os.cpu_count() or 1
        if self.inference_threads < 1:
            raise ArgumentError(f"--inference-threads {self.inference_threads}: must be >= 1")


@dataclass
class Plan:
    """What every measurement of one comparison shares."""

    output: Path
    argv: list[str]
    settings: dict
    compare: CompareArguments
    fresh_cache: bool
    texts_file: Path | None = None


def machine_info() -> dict[str, Any]:
    """CPU model, cores, the instruction sets that matter for inference, library versions, torch's threads (those
    of training: OMP_NUM_THREADS reaches every measurement process), load average."""
    import onnxruntime
    import torch
    import transformers

    model, flags = "unknown", set()
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    return {"cpu": model, "cores": os.cpu_count(), "instruction_sets": [f for f in CPU_FLAGS if f in flags],
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "transformers": transformers.__version__, "onnxruntime": onnxruntime.__version__,
            "load_average": list(os.getloadavg())}


def measurement_settings(model_args, data_args, args, compare: CompareArguments) -> dict:
    """Every setting a measurement depends on (not the backbone or output folder), to tell a reusable result."""
    training = {k: v for k, v in args.to_dict().items() if k not in ("output_dir", "logging_dir", "run_name")}
    inference = {k: getattr(compare, k) for k in ("inference_texts", "inference_batch_size", "inference_threads",
                                                  "inference_device")}
    model = {k: v for k, v in dataclasses.asdict(model_args).items() if k != "backbone"}
    settings = {"model": model, "data": dataclasses.asdict(data_args), "training": training, "inference": inference}
    return json.loads(json.dumps(to_jsonable(settings), default=str))


def previous_result(folder: Path, settings: dict) -> dict | None:
    """The stored result of a backbone measured with the same settings, else None (a different one is logged)."""
    path = folder / "result.json"
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if result.get("settings") != settings:
        logger.info("%s was measured with other settings; measuring again", folder.name)
        return None
    return result


def compare_full(specs: list[str], argv: list[str], model_args, data_args, args,
                 compare: CompareArguments) -> list[dict]:
    """Full-comparison rows of every spec, in order; each measured (or reused) or listed with the reason. Flags
    that are wrong whatever the backbone stop the comparison with one line before any work."""
    from training.recipe import check_arguments

    check_arguments(model_args, data_args, args, None)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    plan = Plan(output, argv, measurement_settings(model_args, data_args, args, compare), compare,
                fresh_cache=args.embedding_cache_dir is None)
    return [full_row(spec, plan, model_args, data_args, args) for spec in specs]


def full_row(spec: str, plan: Plan, model_args, data_args, args) -> dict:
    """One backbone: described, then reused, refused with the reason, or measured (result.json written at once)."""
    try:
        backbone = resolve(spec)
        row = describe(backbone, data_args.max_length)
    except BackboneUnavailable as error:
        return {"backbone": spec, "label": spec, "status": f"unavailable: {error}"}
    try:
        row.update(weights=weights_location(backbone), tokenizer=tokenizer_location(backbone))
    except BackboneUnavailable as error:
        return {**row, "status": f"unavailable: {error}"}
    folder = plan.output / backbone.slug
    previous = None if plan.compare.remeasure else previous_result(folder, plan.settings)
    if previous is not None:
        logger.info("%s: measured at %s, reused (--remeasure measures again)", spec, previous.get("measured_at"))
        return {**{k: v for k, v in previous.items() if k != "settings"}, "reused": True}
    reason = depth_problem(args, backbone)
    if reason:
        return {**row, "status": f"unavailable: {reason}"}
    if plan.texts_file is None:
        plan.texts_file = prepare_texts(backbone, plan, model_args, data_args, args)
    row.update(measure(backbone, folder, plan))
    if row["status"] == "ok":
        row["measured_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_json_atomic(folder / "result.json", {**row, "settings": plan.settings})
    return row


def depth_problem(args, backbone: Backbone) -> str | None:
    """The reason the freezing flags cannot work on this backbone's depth, if any (checked from the config)."""
    from training.recipe import check_depth

    try:
        check_depth(args, backbone.layers)
    except ArgumentError as error:
        return str(error)
    return None


def prepare_texts(backbone: Backbone, plan: Plan, model_args, data_args, args) -> Path:
    """Check flags and data once, before the first measurement (errors stop the comparison with one line), and
    write the test texts the inference timing reads."""
    from training.run import prepare

    model_args = dataclasses.replace(model_args, backbone=tokenizer_source(backbone))
    data = prepare(model_args, data_args, args).data
    split = next(s for s in ("test", "validation", "train") if s in data.raw)
    texts = list(data.raw[split]["text"])
    limit = plan.compare.inference_texts
    path = plan.output / "inference_texts.json"
    write_json_atomic(path, texts[:limit] if limit else texts)
    logger.info("inference timing on %d %s texts", len(texts[:limit] if limit else texts), split)
    return path


def measure(backbone: Backbone, folder: Path, plan: Plan) -> dict:
    """Train (and export) in one process, then time PyTorch and ONNX int8 each in its own; a failure is a row."""
    (folder / "result.json").unlink(missing_ok=True)
    for stale in ("model", "onnx_int8", "embedding_cache"):
        shutil.rmtree(folder / stale, ignore_errors=True)
    try:
        source = materialise(backbone, folder / "encoder")
    except (BackboneUnavailable, OSError, ValueError) as error:
        return {"status": f"failed: cannot derive {backbone.spec}: {error}"}
    cache = folder / "embedding_cache" if plan.fresh_cache else None
    logger.info("%s: training (%s)", backbone.spec, folder / "train.log")
    job = {"argv": plan.argv, "backbone": source, "model_dir": str(folder / "model"),
           "onnx_dir": str(folder / "onnx_int8"), "cache_dir": str(cache) if cache else None}
    trained = run_child("train", job, folder)
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
    if "error" in trained:
        return {"status": f"failed: {trained['error']}"}
    row = {**trained, "embedding_cache_cold": plan.fresh_cache, "status": "ok"}
    for kind in BACKENDS:
        row.update(time_backend(kind, backbone, folder, plan, trained))
    if row.get("pytorch_error"):
        row["status"] = f"failed: PyTorch inference: {row['pytorch_error']}"
    return row


def time_backend(kind: str, backbone: Backbone, folder: Path, plan: Plan, trained: dict) -> dict:
    """Texts/s and peak memory of one back end (None with the reason when it could not be timed)."""
    if kind == "onnx_int8" and trained.get("onnx_int8_error"):
        return {f"{kind}_texts_per_s": None}
    logger.info("%s: timing %s inference", backbone.spec, kind)
    compare = plan.compare
    job = {"model": str(folder / ("model" if kind == "pytorch" else "onnx_int8")), "texts": str(plan.texts_file),
           "threads": compare.inference_threads, "batch_size": compare.inference_batch_size,
           "device": compare.inference_device}
    timed = run_child("infer", job, folder, name=f"infer_{kind}")
    if "error" in timed:
        return {f"{kind}_texts_per_s": None, f"{kind}_error": timed["error"]}
    return {f"{kind}_texts_per_s": timed["texts_per_s"], f"peak_rss_{kind}_mb": timed["peak_rss_mb"],
            "inference_texts": timed["texts"], "inference_threads": timed["threads"]}


def run_child(command: str, job: dict, folder: Path, name: str | None = None) -> dict:
    """`python -m training.backbone_jobs COMMAND JOB` in the caller's folder; its result, or {"error": ...}
    with the last line of its log."""
    name = name or command
    folder.mkdir(parents=True, exist_ok=True)
    job_file, result_file, log = folder / f"{name}.job.json", folder / f"{name}.result.json", folder / f"{name}.log"
    result_file.unlink(missing_ok=True)
    write_json_atomic(job_file, {**job, "result": str(result_file)})
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "TOKENIZERS_PARALLELISM": "false"}
    with open(log, "w", encoding="utf-8") as stream:
        code = subprocess.run([sys.executable, "-m", "training.backbone_jobs", command, str(job_file)],
                              stdout=stream, stderr=subprocess.STDOUT, env=env).returncode
    if code == 0 and result_file.is_file():
        result = json.loads(result_file.read_text(encoding="utf-8"))
        job_file.unlink()
        result_file.unlink()
        return result
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return {"error": f"{(lines or ['no output'])[-1].strip()[:300]} (exit {code}; log: {log})"}
