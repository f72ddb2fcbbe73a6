"""The one loader of a saved model (folder or Hub id): checked first, then model and tokenizer, ready to serve.

`predict.py` (through `TorchBackend`), `evaluate_model.py`, `export_onnx.py` and `load_pipeline` all open models
here, so a folder that lacks its tokenizer, holds truncated weights or is not one of ours fails the same way
everywhere: one `ModelLoadError` line, before any weights are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.errors import ModelLoadError
from modeling.serving import SavedModelError, check_saved_folder, first_line, read_config, without_environment_keys


@dataclass
class LoadedModel:
    """A `MultiTaskModel` in eval mode on `device`, its tokenizer (truncating like training did) and device name."""

    model: Any
    tokenizer: Any
    device: str


def resolve_device(device: str | None) -> str:
    """'auto' (or None) picks cuda when available, else cpu; anything else is passed to torch as given."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except RuntimeError as err:
        message = f"--device {device!r} is not a torch device ({first_line(err)}); e.g. cpu, cuda:0"
        raise ModelLoadError(message) from None
    return device


def check_source(name_or_path: str) -> None:
    """A local folder is checked completely (config, weights, tokenizer); anything else must look like a Hub id."""
    path = Path(name_or_path)
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"--model {name_or_path!r} is a file; give a saved model folder or an .onnx file")
        try:
            check_saved_folder(path, tokenizer=True)
        except SavedModelError as err:
            raise ModelLoadError(str(err)) from None
    elif name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise ModelLoadError(f"--model {name_or_path!r} does not exist (not a folder, .onnx file or Hub id)")


def model_class(name_or_path: str):
    """`MultiTaskEnsembleModel` for a saved ensemble, `MultiTaskModel` otherwise (and for Hub ids)."""
    from modeling import MultiTaskEnsembleModel, MultiTaskModel

    path = Path(name_or_path)
    if (path / "config.json").is_file() and read_config(path).get("model_type") == "multitask_ensemble":
        return MultiTaskEnsembleModel
    return MultiTaskModel


def _load_weights(name_or_path: str):
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # scripts show their own progress; a weight-loading bar is noise on stderr
    try:
        model, info = model_class(name_or_path).from_pretrained(name_or_path, output_loading_info=True)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as err:
        raise ModelLoadError(f"cannot load model {name_or_path!r}: {first_line(err)}") from None
    missing = list(info.get("missing_keys") or [])
    if missing:
        raise ModelLoadError(f"weights of {name_or_path!r} lack {len(missing)} parameters (e.g. {missing[0]!r}); "
                             "the file is incomplete")
    return model


def _load_tokenizer(name_or_path: str, config) -> Any:
    from transformers import AutoTokenizer

    encoder_config = getattr(config, "encoder_config", None)
    if encoder_config is None:  # an ensemble: its members share one tokenizer
        from transformers import AutoConfig

        encoder_config = AutoConfig.for_model(**config.members[0]["encoder_config"])
    try:  # the encoder's config names the tokenizer class; config.json itself would need the custom code
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, config=encoder_config)
    except (OSError, ValueError, TypeError) as err:
        raise ModelLoadError(f"no usable tokenizer saved with {name_or_path!r}: {first_line(err)}") from None
    tokenizer.truncation_side = config.truncation_side
    return without_environment_keys(tokenizer)


def load_model(name_or_path: str, device: str | None = None, threads: int | None = None) -> LoadedModel:
    """Check, then load model and tokenizer; the model is put in eval mode on `device` (default: auto)."""
    check_source(str(name_or_path))
    device = resolve_device(device)
    import torch

    if threads:
        torch.set_num_threads(threads)
    model = _load_weights(str(name_or_path))
    tokenizer = _load_tokenizer(str(name_or_path), model.config)
    return LoadedModel(model=model.to(device).eval(), tokenizer=tokenizer, device=device)


def load_pipeline(name_or_path: str, device: str | None = None):
    """`MultiTaskTextClassificationPipeline` over a model opened by `load_model` (checked, truncation as trained)."""
    from modeling import MultiTaskTextClassificationPipeline

    loaded = load_model(name_or_path, device)
    return MultiTaskTextClassificationPipeline(model=loaded.model, tokenizer=loaded.tokenizer, device=loaded.device)
