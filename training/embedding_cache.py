"""The frozen-encoder fast path: the encoder's output for every row, computed once and kept on disk.

With `--freeze-strategy full` nothing below the pooling trains, so each row's pooled vector is the same in every
epoch, seed, head shape and loss. The cache stores, per split, the `cls`, `mean` and `max` poolings of the frozen
encoder's last hidden states (`mean_max` is mean and max side by side) in a `datasets` Arrow folder, memory-mapped
when read. The key is a hash of the encoder weights, the tokenizer, `max_length` and the split's texts, so any
change of those builds a new entry. Training then feeds the heads from the cache through the same
`MultiTaskTrainer` (losses, sampler, metrics, early stopping, calibration, reports); the saved model is the full
model, encoder included.

Not valid, and never used, when an encoder layer trains (partial, none, progressive), when augmentation changes
the training texts, or with attention pooling (learned over token states, which the cache does not keep).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import shutil
import time
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from data.collator import MultiTaskCollator
from modeling.pooling import ClsPooling, MaxPooling, MeanPooling
from training.arguments import ArgumentError

logger = logging.getLogger(__name__)
CACHE_MODES = ("auto", "on", "off")
CACHED_POOLINGS = {"cls": ClsPooling, "mean": MeanPooling, "max": MaxPooling}
ENCODE_BATCH = 64


def cache_plan(mode: str, freeze_strategy: str, pooling: str, augmented: bool) -> tuple[bool, str]:
    """(use the cache, why); `--cache-embeddings on` where it cannot be used is an `ArgumentError` that says why."""
    if mode not in CACHE_MODES:
        raise ArgumentError(f"--cache-embeddings {mode!r}: choose one of {list(CACHE_MODES)}")
    if mode == "off":
        return False, "--cache-embeddings off"
    reasons = []
    if freeze_strategy != "full":
        reasons.append(f"--freeze-strategy {freeze_strategy} trains encoder layers, and the cache holds the output "
                       "of a frozen encoder (use --freeze-strategy full)")
    if pooling == "attention":
        reasons.append("--pooling attention learns its weights over the token states, which the cache does not "
                       "keep (use cls, mean, max or mean_max)")
    if augmented:
        reasons.append("word dropout / swap change the training texts every epoch")
    if not reasons:
        return True, "the encoder is frozen"
    if mode == "on":
        raise ArgumentError(f"--cache-embeddings on: {'; '.join(reasons)}")
    return False, "; ".join(reasons)


def default_cache_dir() -> Path:
    return Path(datasets.config.HF_DATASETS_CACHE) / "multitask_embeddings"


def encoder_fingerprint(encoder: torch.nn.Module) -> str:
    """SHA-256 of every encoder tensor (name, dtype, shape, bytes), in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def cache_key(encoder_hash: str, tokenizer_hash: str, max_length: int, texts: list[str]) -> str:
    digest = hashlib.sha256(f"{encoder_hash}|{tokenizer_hash}|{max_length}|".encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:32]


@torch.no_grad()
def embed(encoder: torch.nn.Module, tokenized: datasets.Dataset, tokenizer, desc: str) -> dict[str, np.ndarray]:
    """`cls`, `mean` and `max` pooled vectors (N, H) of the frozen encoder, in row order (batches sorted by length)."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    pad = MultiTaskCollator(tokenizer, [])
    lengths = np.array([len(ids) for ids in tokenized["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    hidden = encoder.config.hidden_size
    out = {name: np.empty((len(order), hidden), dtype=np.float32) for name in CACHED_POOLINGS}
    poolers = {name: cls(hidden) for name, cls in CACHED_POOLINGS.items()}
    takes_types = "token_type_ids" in inspect.signature(encoder.forward).parameters
    try:
        for start in tqdm(range(0, len(order), ENCODE_BATCH), desc=desc, unit="batch"):
            rows = order[start:start + ENCODE_BATCH]
            batch = {k: v.to(device) for k, v in pad.inputs(tokenized.select(rows).to_list()).items()
                     if k != "token_type_ids" or takes_types}
            states = encoder(**batch).last_hidden_state  # (B, T, H)
            for name, pooler in poolers.items():
                out[name][rows] = pooler(states, batch["attention_mask"]).float().cpu().numpy()
    finally:
        encoder.train(was_training)
    return out


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def load_or_build(path: Path, encoder, tokenized: datasets.Dataset, tokenizer, split: str) -> datasets.Dataset:
    """The cached pooled vectors of one split, built (written atomically) when the entry is missing."""
    if (path / "dataset_info.json").is_file():
        cached = datasets.load_from_disk(str(path))
        logger.info("embedding cache: reused %s (%d rows, %.1f MB) from %s", split, len(cached),
                    folder_size(path) / 1e6, path)
        return cached
    start = time.perf_counter()
    vectors = embed(encoder, tokenized, tokenizer, f"Embedding {split}")
    columns = {name: pa.FixedSizeListArray.from_arrays(pa.array(value.reshape(-1)), value.shape[1])
               for name, value in vectors.items()}
    table = datasets.Dataset(datasets.table.InMemoryTable(pa.table(columns)))
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    table.save_to_disk(str(tmp))
    try:
        os.replace(tmp, path)
    except OSError:  # another process wrote the same entry first
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("embedding cache: built %s (%d rows, %.1f MB) in %.1f s at %s", split, len(table),
                folder_size(path) / 1e6, time.perf_counter() - start, path)
    return datasets.load_from_disk(str(path))


def cached_splits(encoder, tokenizer, tokenizer_hash: str, max_length: int, raw: datasets.DatasetDict,
                  tokenized: datasets.DatasetDict, cache_dir: str | Path | None = None) -> datasets.DatasetDict:
    """Every split with its token ids replaced by the cached pooled vectors (labels kept)."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    encoder_hash = encoder_fingerprint(encoder)
    out = {}
    for split, dataset in tokenized.items():
        key = cache_key(encoder_hash, tokenizer_hash, max_length, list(raw[split]["text"]))
        vectors = load_or_build(cache_dir / key, encoder, dataset, tokenizer, split)
        labels = dataset.remove_columns([c for c in dataset.column_names if not c.startswith("labels_")])
        out[split] = datasets.concatenate_datasets([vectors, labels], axis=1)
    return datasets.DatasetDict(out)
