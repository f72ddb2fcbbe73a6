"""Multi-task text classification model: everything that travels with a saved model.

- `task_schema`: what a task is (types, losses, the ignore index, `label_key`, validation); numpy only.
- `postprocessing`: the one decoding path (temperatures, probabilities, thresholds); numpy only.
- `configuration_multitask`, `modeling_multitask`, `pooling`, `losses`, `pipeline_multitask`: the PyTorch side;
  `ensemble_multitask`: several trained models as one.

`import modeling` is light: the numpy-only names are imported at once, so an ONNX Runtime server can decode without
loading torch (about 4.5 s and 400 MB less at start-up). The PyTorch names load on first use: `from modeling import
MultiTaskModel` imports them, registers `MultiTaskConfig` / `MultiTaskModel` with `AutoConfig` / `AutoModel` (and
for `auto_map`, so `save_pretrained` writes the code next to the weights) and registers the pipeline task
"multitask-text-classification".
"""

from __future__ import annotations

import importlib
from typing import Any

from .postprocessing import decode_outputs, decode_task, flatten_result, probabilities, threshold_vector
from .task_schema import (
    CLASSIFICATION_TYPES,
    IGNORE_INDEX,
    LOSSES_BY_TYPE,
    TASK_TYPES,
    TaskSchemaError,
    label_key,
    normalize_task,
    normalize_tasks,
)

# PyTorch-side name -> submodule defining it; imported on first access (PEP 562).
_TORCH_SIDE = {
    "MultiTaskConfig": "configuration_multitask",
    "POOLING_OPTIONS": "configuration_multitask",
    "MultiTaskModel": "modeling_multitask",
    "MultiTaskOutput": "modeling_multitask",
    "TaskHead": "modeling_multitask",
    "POOLING_CLASSES": "pooling",
    "build_pooling": "pooling",
    "UncertaintyWeighting": "losses",
    "class_weights_from_counts": "losses",
    "compute_task_loss": "losses",
    "inverse_variance_weights": "losses",
    "masked_bce_with_logits": "losses",
    "masked_cross_entropy": "losses",
    "masked_gaussian_nll": "losses",
    "masked_huber": "losses",
    "masked_mse": "losses",
    "pos_weight_from_counts": "losses",
    "sigmoid_focal_loss": "losses",
    "softmax_focal_loss": "losses",
    "MultiTaskEnsembleConfig": "ensemble_multitask",
    "MultiTaskEnsembleModel": "ensemble_multitask",
    "PIPELINE_TASK": "pipeline_multitask",
    "MultiTaskTextClassificationPipeline": "pipeline_multitask",
}


def load_torch_side() -> None:
    """Import the PyTorch modules; importing them registers the Auto classes and the pipeline task."""
    for module in ("configuration_multitask", "modeling_multitask", "ensemble_multitask", "pipeline_multitask"):
        importlib.import_module(f".{module}", __name__)


def __getattr__(name: str) -> Any:
    if name not in _TORCH_SIDE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    load_torch_side()
    value = getattr(importlib.import_module(f".{_TORCH_SIDE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_TORCH_SIDE])


__all__ = [
    "CLASSIFICATION_TYPES", "IGNORE_INDEX", "LOSSES_BY_TYPE", "TASK_TYPES", "TaskSchemaError", "decode_outputs",
    "decode_task", "flatten_result", "label_key", "load_torch_side", "normalize_task", "normalize_tasks",
    "probabilities", "threshold_vector", *_TORCH_SIDE,
]
