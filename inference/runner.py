"""Batched prediction over any back end (PyTorch or ONNX Runtime): length-sorted batches, dynamic padding, results
written back in input order, decoded by `modeling/postprocessing.py`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from inference.errors import InputError, ModelLoadError
from modeling.postprocessing import decode_outputs, decode_samples

PROGRESS_MIN_TEXTS = 512


class Backend(Protocol):
    """What the runner needs from a served model."""

    kind: str
    tasks: list[dict[str, Any]]
    thresholds: dict[str, dict[str, float]]
    temperatures: dict[str, float]
    max_length: int
    input_names: tuple[str, ...]
    tokenizer: Any

    def run(self, encoded: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def is_onnx_source(model: str | os.PathLike) -> bool:
    """True for an .onnx file or a folder with .onnx files and no `config.json` (an export folder)."""
    path = Path(model)
    if path.is_file():
        return path.suffix.lower() == ".onnx"
    return path.is_dir() and not (path / "config.json").exists() and any(path.glob("*.onnx"))


def load_backend(model: str | os.PathLike, device: str | None = None, threads: int | None = None) -> Backend:
    """Open a saved model folder or Hub id (PyTorch) or an ONNX export (onnxruntime, no torch model code)."""
    path = Path(model)
    if is_onnx_source(path):
        from inference.onnx_backend import OnnxBackend

        return OnnxBackend(path, threads=threads, device=device)
    if path.is_file():
        raise ModelLoadError(f"--model {str(model)!r} is a file but not an .onnx export; give a saved model folder")
    from inference.torch_backend import TorchBackend

    return TorchBackend.load(str(model), device=device, threads=threads)


def length_order(texts: Sequence[str]) -> list[int]:
    """Indices of the texts sorted by character length (a cheap proxy of token length), stable."""
    return sorted(range(len(texts)), key=lambda i: len(texts[i]))


def _progress(total: int, show: bool | None):
    from tqdm.auto import tqdm

    enabled = total >= PROGRESS_MIN_TEXTS if show is None else show
    return tqdm(total=total, disable=not enabled, file=sys.stderr, unit="text", desc="predict")


def encode_batch(backend: Backend, texts: Sequence[str], max_length: int | None = None) -> dict[str, np.ndarray]:
    """Tokenize one batch, padded to its longest text and truncated to the model's limit."""
    limit = min(max_length or backend.max_length, backend.max_length)
    encoded = backend.tokenizer(
        list(texts), padding=True, truncation=True, max_length=limit, return_tensors="np"
    )
    return {name: np.asarray(encoded[name]) for name in backend.input_names if name in encoded}


def predict_logits(
    backend: Backend, texts: Sequence[str], batch_size: int = 32, max_length: int | None = None,
    show_progress: bool | None = None,
) -> dict[str, list[np.ndarray]]:
    """Raw head outputs per text, in input order: ``{output: [row_array, ...]}`` (a task's logits under its name,
    a predicted standard deviation under `std_<task>`)."""
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    order = length_order(texts)
    rows: dict[str, list[Any]] = {}
    with _progress(len(texts), show_progress) as bar:
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            outputs = backend.run(encode_batch(backend, [texts[i] for i in index], max_length))
            for name, values in outputs.items():
                column = rows.setdefault(name, [None] * len(texts))
                for position, value in zip(index, np.asarray(values)):
                    column[position] = value
            bar.update(len(index))
    return rows


def predict_texts(
    backend: Backend, texts: Sequence[str], batch_size: int = 32, max_length: int | None = None,
    show_progress: bool | None = None, mc_dropout: int = 0, seed: int = 0,
) -> list[dict[str, dict[str, Any]]]:
    """Per-text results ``{task: result}`` (see `modeling/postprocessing.py`) in the order of `texts`.

    `mc_dropout` N > 0: N passes with dropout on (seeded with `seed`), decoded as their mean, with the spread of
    the passes under `std` (PyTorch back end only).
    """
    if not texts:
        return []
    if mc_dropout:
        return predict_with_mc_dropout(backend, texts, mc_dropout, seed, batch_size, max_length, show_progress)
    rows = predict_logits(backend, texts, batch_size, max_length, show_progress)
    logits = {name: np.stack(values) for name, values in rows.items()}
    return decode_outputs(backend.tasks, logits, backend.thresholds, backend.temperatures)


def predict_with_mc_dropout(backend: Backend, texts: Sequence[str], passes: int, seed: int, batch_size: int,
                            max_length: int | None, show_progress: bool | None) -> list[dict[str, dict[str, Any]]]:
    """`passes` stochastic forward passes over all texts, decoded by `decode_samples`."""
    if not getattr(backend, "supports_mc_dropout", False):
        raise InputError(f"--mc-dropout needs the PyTorch back end: a {backend.kind} model runs without dropout "
                         "(serve the saved model folder instead of its export)")
    import torch

    torch.manual_seed(seed)
    backend.set_dropout(True)
    try:
        samples = [{name: np.stack(values) for name, values in
                    predict_logits(backend, texts, batch_size, max_length, show_progress).items()}
                   for _ in range(passes)]
    finally:
        backend.set_dropout(False)
    return decode_samples(backend.tasks, samples, backend.thresholds, backend.temperatures)
