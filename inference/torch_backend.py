"""Serving a saved model folder or Hub id with PyTorch: validated loading (one-line errors) and batched forward."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import ModelLoadError

MODEL_TYPE = "multitask_text"
WEIGHT_FILES = (
    "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
)
FALLBACK_MAX_LENGTH = 512


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def usable_max_length(config: Mapping[str, Any], tokenizer: Any = None) -> int:
    """Longest token sequence the encoder accepts: its position table (RoBERTa-style offsets removed), capped by the
    tokenizer's `model_max_length`."""
    encoder = config.get("encoder_config") or {}
    positions = encoder.get("max_position_embeddings") if isinstance(encoder, Mapping) else None
    limit = int(positions) if positions else FALLBACK_MAX_LENGTH
    if positions and "roberta" in str(encoder.get("model_type", "")) and encoder.get("pad_token_id") is not None:
        limit -= int(encoder["pad_token_id"]) + 1
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
        limit = min(limit, tokenizer_limit)
    return limit


def check_safetensors(path: Path) -> None:
    """Open a safetensors file and read every tensor header, so corrupt or truncated files fail with one line."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as handle:
            for key in handle.keys():
                handle.get_slice(key)
    except Exception as err:  # safetensors raises SafetensorError / OSError for unreadable files
        raise ModelLoadError(f"weights file {str(path)!r} is corrupt or truncated: {_first_line(err)}") from None


def check_model_folder(folder: Path) -> dict[str, Any]:
    """Validate a saved model folder before loading: config.json of our model type, and readable weights."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        hint = " (it holds checkpoint-* folders; pass one of those)" if any(folder.glob("checkpoint-*")) else ""
        raise ModelLoadError(f"{str(folder)!r} is not a saved model folder: no config.json{hint}")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"{str(config_path)!r} is not valid JSON: {_first_line(err)}") from None
    if config.get("model_type") != MODEL_TYPE:
        raise ModelLoadError(
            f"{str(folder)!r} holds a {config.get('model_type')!r} model, not a multi-task model "
            f"(model_type {MODEL_TYPE!r})"
        )
    present = [name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not present:
        raise ModelLoadError(f"{str(folder)!r} has no weights file; expected one of {list(WEIGHT_FILES)}")
    for shard in sorted(folder.glob("*.safetensors")):
        check_safetensors(shard)
    return config


def model_input_names(model: Any, tokenizer: Any) -> tuple[str, ...]:
    """input_ids, attention_mask, and token_type_ids when the tokenizer makes them and the encoder reads them."""
    import inspect

    names = ["input_ids", "attention_mask"]
    encoder = getattr(model, "encoder", None)
    accepts = encoder is not None and "token_type_ids" in inspect.signature(encoder.forward).parameters
    if accepts and "token_type_ids" in tokenizer.model_input_names:
        names.append("token_type_ids")
    return tuple(names)


def resolve_device(device: str | None) -> str:
    """'auto' (or None) picks cuda when available, else cpu; anything else is passed to torch as given."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except RuntimeError as err:
        message = f"--device {device!r} is not a torch device ({_first_line(err)}); e.g. cpu, cuda:0"
        raise ModelLoadError(message) from None
    return device


def _load_model(name_or_path: str):
    from transformers.utils import logging as hf_logging

    from modeling import MultiTaskModel

    hf_logging.disable_progress_bar()  # predict.py shows its own progress; a weight-loading bar is noise on stderr
    try:
        model, info = MultiTaskModel.from_pretrained(name_or_path, output_loading_info=True)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as err:
        raise ModelLoadError(f"cannot load model {name_or_path!r}: {_first_line(err)}") from None
    missing = list(info.get("missing_keys") or [])
    if missing:
        raise ModelLoadError(
            f"weights of {name_or_path!r} lack {len(missing)} parameters (e.g. {missing[0]!r}); the file is incomplete"
        )
    return model


def _load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError, TypeError) as err:
        raise ModelLoadError(f"no usable tokenizer saved with {name_or_path!r}: {_first_line(err)}") from None


class TorchBackend:
    """A `MultiTaskModel` in eval mode plus its tokenizer and decoding settings."""

    kind = "pytorch"

    def __init__(self, model: Any, tokenizer: Any, device: str | None = None) -> None:
        import torch

        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        config = model.config.to_dict()
        self.config = config
        self.tasks: list[dict[str, Any]] = list(config["tasks"])
        self.thresholds = dict(config.get("thresholds") or {})
        self.temperatures = dict(config.get("temperatures") or {})
        self.max_length = usable_max_length(config, tokenizer)
        self.input_names = model_input_names(model, tokenizer)
        self._torch = torch

    @classmethod
    def load(cls, name_or_path: str, device: str | None = None, threads: int | None = None) -> TorchBackend:
        """Open a local saved folder (validated first) or a Hub id."""
        path = Path(name_or_path)
        if path.exists():
            if not path.is_dir():
                raise ModelLoadError(f"--model {name_or_path!r} is a file; give a saved model folder or an .onnx file")
            check_model_folder(path)
        elif name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
            raise ModelLoadError(f"--model {name_or_path!r} does not exist (not a folder, .onnx file or Hub id)")
        import torch

        if threads:
            torch.set_num_threads(threads)
        return cls(_load_model(name_or_path), _load_tokenizer(name_or_path), device=device)

    def run(self, encoded: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Head outputs `{task: array}` for one tokenized batch."""
        torch = self._torch
        feed = {n: torch.as_tensor(encoded[n], device=self.device) for n in self.input_names if n in encoded}
        with torch.inference_mode():
            logits = self.model(**feed).logits
        return {name: value.float().cpu().numpy() for name, value in logits.items()}
