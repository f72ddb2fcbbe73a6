"""Batched tokenization (fast tokenizer, truncation, no padding) with an on-disk cache keyed on content."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import datasets

from data.collator import MODEL_INPUTS

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(datasets.config.HF_DATASETS_CACHE) / "multitask_tokenized"


def tokenizer_fingerprint(tokenizer) -> str:
    """Stable hash of what decides the token ids: the tokenizer's full definition and truncation side."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # The backend also records the truncation / padding of the last call: leave those out of the key.
        definition = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
        body = json.dumps(definition, sort_keys=True)
    else:
        from datasets.fingerprint import Hasher

        body = Hasher.hash(tokenizer)
    head = f"{type(tokenizer).__name__}|{tokenizer.truncation_side}|{tokenizer.model_input_names}"
    return hashlib.sha256((head + body).encode("utf-8")).hexdigest()


def _texts_hash(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def tokenize_texts(texts: list[str], tokenizer, max_length: int, cache_dir: str | Path | None,
                   tok_hash: str | None = None, batch_size: int = 1000) -> datasets.Dataset:
    """Dataset of input_ids / attention_mask (/ token_type_ids) for `texts`, reused from the cache when present."""
    key = hashlib.sha256(f"{tok_hash or tokenizer_fingerprint(tokenizer)}|{max_length}|"
                         f"{_texts_hash(texts)}".encode()).hexdigest()[:32]
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / key
        if (path / "dataset_info.json").is_file():
            logger.info("tokenized texts loaded from cache %s", path)
            return datasets.load_from_disk(str(path))

    def encode(batch: dict) -> dict:
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
        return {k: v for k, v in encoded.items() if k in MODEL_INPUTS}

    table = datasets.Dataset.from_dict({"text": texts})
    # new_fingerprint: our key already identifies the result; without it `datasets` pickles the tokenizer to hash it.
    tokenized = table.map(encode, batched=True, batch_size=batch_size, remove_columns=["text"], new_fingerprint=key,
                          desc="Tokenizing")
    if path is not None:
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        quiet = not datasets.utils.are_progress_bars_disabled()
        if quiet:
            datasets.utils.disable_progress_bars()
        try:
            tokenized.save_to_disk(str(tmp))
        finally:
            if quiet:
                datasets.utils.enable_progress_bars()
        try:
            os.replace(tmp, path)
        except OSError:  # another process wrote the same entry first
            shutil.rmtree(tmp, ignore_errors=True)
        tokenized = datasets.load_from_disk(str(path)) if path.is_dir() else tokenized
    return tokenized
