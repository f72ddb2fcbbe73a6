"""Serving a saved model folder or Hub id with PyTorch: opened by `inference.loading`, batched forward passes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from inference.loading import load_model
from modeling.postprocessing import std_output_name
from modeling.serving import serving_max_length


def model_input_names(model: Any, tokenizer: Any) -> tuple[str, ...]:
    """input_ids, attention_mask, and token_type_ids when the tokenizer makes them and the encoder reads them."""
    names = ["input_ids", "attention_mask"]
    if getattr(model, "accepts_token_type_ids", False) and "token_type_ids" in tokenizer.model_input_names:
        names.append("token_type_ids")
    return tuple(names)


class TorchBackend:
    """A `MultiTaskModel` in eval mode plus its tokenizer and decoding settings."""

    kind = "pytorch"

    def __init__(self, model: Any, tokenizer: Any, device: str = "cpu") -> None:
        import torch

        self.device = device
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.config = model.config.to_dict()
        self.tasks: list[dict[str, Any]] = list(self.config["tasks"])
        self.thresholds = dict(self.config.get("thresholds") or {})
        self.temperatures = dict(self.config.get("temperatures") or {})
        self.max_length = serving_max_length(self.config, tokenizer)
        self.input_names = model_input_names(model, tokenizer)
        self._torch = torch

    @classmethod
    def load(cls, name_or_path: str, device: str | None = None, threads: int | None = None) -> TorchBackend:
        """Open a local saved folder (checked first) or a Hub id through the one loader."""
        loaded = load_model(name_or_path, device=device, threads=threads)
        return cls(loaded.model, loaded.tokenizer, device=loaded.device)

    supports_mc_dropout = True

    def run(self, encoded: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Head outputs `{task: array}` for one tokenized batch, plus `std_<task>` for `gaussian_nll` heads."""
        torch = self._torch
        feed = {n: torch.as_tensor(encoded[n], device=self.device) for n in self.input_names if n in encoded}
        with torch.inference_mode():
            output = self.model(**feed)
            stds = self.model.predicted_std(output.log_variances) if hasattr(self.model, "predicted_std") else {}
        arrays = {name: value.float().cpu().numpy() for name, value in output.logits.items()}
        arrays.update({std_output_name(name): value.float().cpu().numpy() for name, value in stds.items()})
        return arrays

    def set_dropout(self, active: bool) -> None:
        """Dropout on (MC dropout: every pass draws new masks) or off. The whole model switches mode, because
        transformers' attention applies its dropout from the attention module's own `training` flag, not through
        an `nn.Dropout`; the models served here have no batch norm or other mode-dependent layer."""
        self.model.train(active)
