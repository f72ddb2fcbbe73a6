"""Serving an ONNX export with onnxruntime and the tokenizer saved beside it; no torch model code is imported.

The export carries everything needed to decode its outputs in the ONNX `metadata_props` under `METADATA_KEY`: a JSON
document with the full model config (tasks, labels, thresholds, temperatures, regression scales), the input names,
the output name of each task (`logits_<task>`), the maximum sequence length and the quantization applied.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import ModelLoadError
from modeling.postprocessing import std_output_name
from modeling.serving import first_line

METADATA_KEY = "multitask_config"
FORMAT_VERSION = 1
ONNX_FILE_NAME = "model.onnx"


def output_name(task: str) -> str:
    """Name of the ONNX graph output that holds one task's head output."""
    return f"logits_{task}"


def build_metadata(
    config: Mapping[str, Any], input_names: Sequence[str], max_length: int, quantization: str | None = None,
    std_names: Sequence[str] = (),
) -> dict[str, str]:
    """The metadata_props entries of an export: one JSON document under `METADATA_KEY` (`std_names`: the tasks
    whose predicted standard deviation is an output too)."""
    tasks = config.get("tasks") or []
    if not tasks:
        raise ValueError("model config has no tasks; cannot describe the ONNX outputs")
    document = {
        "format_version": FORMAT_VERSION,
        "config": dict(config),
        "inputs": list(input_names),
        "outputs": {**{t["name"]: output_name(t["name"]) for t in tasks},
                    **{std_output_name(name): std_output_name(name) for name in std_names}},
        "max_length": int(max_length),
        "quantization": quantization,
    }
    return {METADATA_KEY: json.dumps(document, sort_keys=True)}


def parse_metadata(props: Mapping[str, str], source: str) -> dict[str, Any]:
    """Validate and decode the document written by `build_metadata`; anything else is a `ModelLoadError`."""
    if METADATA_KEY not in props:
        raise ModelLoadError(
            f"{source} has no multi-task metadata (metadata_props key {METADATA_KEY!r}); export it with export_onnx.py"
        )
    try:
        document = json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"{source}: metadata {METADATA_KEY!r} is not valid JSON ({err.msg})") from None
    required = ("format_version", "config", "inputs", "outputs", "max_length")
    missing = [key for key in required if key not in document]
    if missing:
        raise ModelLoadError(f"{source}: metadata {METADATA_KEY!r} lacks {missing}")
    if document["format_version"] != FORMAT_VERSION:
        raise ModelLoadError(
            f"{source}: metadata format {document['format_version']} is not supported (expected {FORMAT_VERSION})"
        )
    if not document["config"].get("tasks"):
        raise ModelLoadError(f"{source}: metadata config has no tasks")
    return document


def resolve_onnx_file(path: str | os.PathLike) -> Path:
    """An .onnx file, or an export folder holding `model.onnx` (or exactly one .onnx file)."""
    path = Path(path)
    if path.is_file():
        return path
    candidates = sorted(path.glob("*.onnx")) if path.is_dir() else []
    preferred = path / ONNX_FILE_NAME
    if preferred in candidates:
        return preferred
    if len(candidates) == 1:
        return candidates[0]
    raise ModelLoadError(f"{str(path)!r} holds {len(candidates)} .onnx files; name the one to serve")


def _session(path: Path, threads: int | None, device: str | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device and device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as err:  # onnxruntime raises its own exception types for unreadable graphs
        raise ModelLoadError(f"ONNX file {str(path)!r} cannot be loaded: {first_line(err)}") from None


class JsonTokenizer:
    """The saved `tokenizer.json` run by the `tokenizers` library directly, called like a transformers tokenizer.

    Serving an export with it avoids importing transformers (and through it torch), which dominates the start-up
    time of an ONNX-only `predict.py`. Padding uses the saved pad token; truncation counts the special tokens.
    """

    def __init__(self, folder: Path, truncation_side: str = "right") -> None:
        from tokenizers import Tokenizer

        self.truncation_side = truncation_side
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        settings_path = folder / "tokenizer_config.json"
        settings = json.loads(settings_path.read_text(encoding="utf-8")) if settings_path.is_file() else {}
        pad = settings.get("pad_token")
        pad = pad.get("content") if isinstance(pad, dict) else pad
        self.pad_token = pad or "[PAD]"
        self.pad_id = self._tokenizer.token_to_id(self.pad_token)
        if self.pad_id is None:
            raise ModelLoadError(f"pad token {self.pad_token!r} is not in {str(folder / 'tokenizer.json')!r}")
        self.model_max_length = int(settings.get("model_max_length") or 10**30)

    def __call__(self, texts: Sequence[str], padding: bool = True, truncation: bool = True,
                 max_length: int | None = None, return_tensors: str = "np") -> dict[str, np.ndarray]:
        """input_ids, attention_mask and token_type_ids (int64, batch x longest) for a list of texts."""
        tok = self._tokenizer
        if truncation and max_length:
            tok.enable_truncation(max_length=max_length, direction=self.truncation_side)
        else:
            tok.no_truncation()
        if padding:
            tok.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token)
        else:
            tok.no_padding()
        encodings = tok.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }


def _tokenizer(folder: Path, truncation_side: str):
    """`JsonTokenizer` when the export has a tokenizer.json, else the transformers AutoTokenizer."""
    try:
        if (folder / "tokenizer.json").is_file():
            return JsonTokenizer(folder, truncation_side)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder), truncation_side=truncation_side)
    except (OSError, ValueError, TypeError, json.JSONDecodeError) as err:
        message = f"no usable tokenizer beside the ONNX file in {str(folder)!r}: {first_line(err)}"
        raise ModelLoadError(message) from None


class OnnxBackend:
    """An ONNX Runtime session plus tokenizer and decoding settings, with the same interface as `TorchBackend`."""

    kind = "onnx"

    def __init__(self, path: str | os.PathLike, threads: int | None = None, device: str | None = None) -> None:
        self.path = resolve_onnx_file(path)
        self.session = _session(self.path, threads, device)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = parse_metadata(meta, f"ONNX file {str(self.path)!r}")
        config = self.metadata["config"]
        self.config = config
        self.tasks: list[dict[str, Any]] = list(config["tasks"])
        self.thresholds: dict[str, dict[str, float]] = dict(config.get("thresholds") or {})
        self.temperatures: dict[str, float] = dict(config.get("temperatures") or {})
        self.max_length = int(self.metadata["max_length"])
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.outputs: dict[str, str] = dict(self.metadata["outputs"])
        graph_outputs = {o.name for o in self.session.get_outputs()}
        absent = sorted(set(self.outputs.values()) - graph_outputs)
        if absent:
            raise ModelLoadError(f"ONNX file {str(self.path)!r} lacks the outputs {absent} named in its metadata")
        self.tokenizer = _tokenizer(self.path.parent, config.get("truncation_side") or "right")

    def run(self, encoded: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Head outputs `{task: array}` for one tokenized batch (numpy int64 inputs)."""
        feed = {name: np.asarray(encoded[name], dtype=np.int64) for name in self.input_names}
        names = list(self.outputs)
        values = self.session.run([self.outputs[n] for n in names], feed)
        return dict(zip(names, values))
