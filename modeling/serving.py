"""What every way of serving a saved model shares, without torch: folder checks and the truncation length.

`check_saved_folder` turns an incomplete or foreign folder into one line (`SavedModelError`) before any loader
touches it; `MultiTaskModel.from_pretrained`, `predict.py`, `evaluate_model.py`, the pipeline loader and the ONNX
export all call it. `serving_max_length` gives the token limit the model was trained with, capped by what the
encoder accepts, so that PyTorch, the pipeline and ONNX Runtime truncate exactly where training did.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MODEL_TYPE = "multitask_text"
MODEL_TYPES = (MODEL_TYPE, "multitask_ensemble")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
# A saved tokenizer: its settings plus one vocabulary file (fast tokenizers keep everything in tokenizer.json).
TOKENIZER_SETTINGS = "tokenizer_config.json"
TOKENIZER_VOCABULARIES = ("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model",
                          "tokenizer.model")
FALLBACK_MAX_LENGTH = 512
ENVIRONMENT_KEYS = ("is_local", "local_files_only")


class SavedModelError(OSError):
    """A saved model folder that cannot be served: missing, incomplete, corrupt, or not a multi-task model."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_safetensors(path: Path) -> None:
    """Open a safetensors file and read every tensor header, so corrupt or truncated files fail with one line."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as handle:
            for key in handle.keys():
                handle.get_slice(key)
    except Exception as err:  # safetensors raises SafetensorError / OSError for unreadable files
        raise SavedModelError(f"weights file {str(path)!r} is corrupt or truncated: {first_line(err)}") from None


def read_config(folder: Path) -> dict[str, Any]:
    """`config.json` of a saved multi-task model, checked for our model type."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        hint = " (it holds checkpoint-* folders; pass one of those)" if any(folder.glob("checkpoint-*")) else ""
        raise SavedModelError(f"{str(folder)!r} is not a saved model folder: no config.json{hint}")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SavedModelError(f"{str(config_path)!r} is not valid JSON: {first_line(err)}") from None
    if not isinstance(config, dict) or config.get("model_type") not in MODEL_TYPES:
        found = config.get("model_type") if isinstance(config, dict) else None
        raise SavedModelError(f"{str(folder)!r} holds a {found!r} model, not a multi-task model "
                              f"(model_type one of {list(MODEL_TYPES)})")
    return config


def check_saved_folder(folder: str | Path, tokenizer: bool = True) -> dict[str, Any]:
    """Validate a saved model folder before loading it: config, readable weights and (by default) a tokenizer.

    Returns the parsed `config.json`. Every problem is one `SavedModelError` line naming the folder and the file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SavedModelError(f"{str(folder)!r} is not a folder")
    config = read_config(folder)
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise SavedModelError(f"{str(folder)!r} has no weights file; expected one of {list(WEIGHT_FILES)}")
    for shard in sorted(folder.glob("*.safetensors")):
        check_safetensors(shard)
    if tokenizer:
        check_tokenizer_files(folder)
    return config


def check_tokenizer_files(folder: Path) -> None:
    """A saved tokenizer is its settings file plus a vocabulary file; refuse a folder that lacks either."""
    if not (folder / TOKENIZER_SETTINGS).is_file() or not any((folder / n).is_file() for n in TOKENIZER_VOCABULARIES):
        raise SavedModelError(f"{str(folder)!r} has no saved tokenizer ({TOKENIZER_SETTINGS} and one of "
                              f"{list(TOKENIZER_VOCABULARIES)}); the save was interrupted or the folder was copied "
                              "in part: save the model again, or copy the tokenizer files of its backbone into it")


def without_environment_keys(tokenizer: Any) -> Any:
    """Drop the keys transformers records about where a tokenizer was loaded from (`is_local`,
    `local_files_only`), so that a saved `tokenizer_config.json` holds the tokenizer and nothing of the machine."""
    for key in ENVIRONMENT_KEYS:
        getattr(tokenizer, "init_kwargs", {}).pop(key, None)
    return tokenizer


def encoder_max_length(encoder: Mapping[str, Any]) -> int:
    """Longest sequence the encoder's position table accepts (RoBERTa-style position offsets removed)."""
    positions = encoder.get("max_position_embeddings")
    if not positions:
        return FALLBACK_MAX_LENGTH
    limit = int(positions)
    if "roberta" in str(encoder.get("model_type", "")) and encoder.get("pad_token_id") is not None:
        limit -= int(encoder["pad_token_id"]) + 1
    return limit


def serving_max_length(config: Mapping[str, Any], tokenizer: Any = None) -> int:
    """Tokens per text at serving time: the training `max_length` stored in the config, capped by the encoder's
    position table and the tokenizer's `model_max_length` (the encoder's limit when the config has none)."""
    encoders = [config["encoder_config"]] if config.get("encoder_config") else [
        member.get("encoder_config") or {} for member in config.get("members") or [{}]]
    limit = min(encoder_max_length(e if isinstance(e, Mapping) else {}) for e in encoders)
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
        limit = min(limit, tokenizer_limit)
    trained = config.get("max_length")
    return min(limit, int(trained)) if trained else limit


__all__ = ["MODEL_TYPE", "MODEL_TYPES", "SavedModelError", "check_saved_folder", "check_tokenizer_files",
           "encoder_max_length", "first_line", "read_config", "serving_max_length", "without_environment_keys"]
