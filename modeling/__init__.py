"""Multi-task text classification model: config, model, pooling and losses (everything that travels with a model).

Importing this package registers `MultiTaskConfig` / `MultiTaskModel` with `AutoConfig` / `AutoModel` and marks
both for `auto_map`, so `save_pretrained` writes the code next to the weights and
`AutoModel.from_pretrained(folder, trust_remote_code=True)` works without this repository.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoModel

from .configuration_multitask import LOSSES_BY_TYPE, POOLING_OPTIONS, TASK_TYPES, MultiTaskConfig, label_key
from .losses import (
    UncertaintyWeighting,
    class_weights_from_counts,
    compute_task_loss,
    inverse_variance_weights,
    masked_bce_with_logits,
    masked_cross_entropy,
    masked_gaussian_nll,
    masked_huber,
    masked_mse,
    pos_weight_from_counts,
    sigmoid_focal_loss,
    softmax_focal_loss,
)
from .modeling_multitask import MultiTaskModel, MultiTaskOutput, TaskHead
from .pooling import POOLING_CLASSES, build_pooling

AutoConfig.register(MultiTaskConfig.model_type, MultiTaskConfig, exist_ok=True)
AutoModel.register(MultiTaskConfig, MultiTaskModel, exist_ok=True)
MultiTaskConfig.register_for_auto_class()
MultiTaskModel.register_for_auto_class("AutoModel")

__all__ = [
    "LOSSES_BY_TYPE",
    "POOLING_CLASSES",
    "POOLING_OPTIONS",
    "TASK_TYPES",
    "MultiTaskConfig",
    "MultiTaskModel",
    "MultiTaskOutput",
    "TaskHead",
    "UncertaintyWeighting",
    "build_pooling",
    "class_weights_from_counts",
    "compute_task_loss",
    "inverse_variance_weights",
    "label_key",
    "masked_bce_with_logits",
    "masked_cross_entropy",
    "masked_gaussian_nll",
    "masked_huber",
    "masked_mse",
    "pos_weight_from_counts",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
]

# Inference additions (issue 6): numpy decoding shared with predict.py, and the pipeline task
# "multitask-text-classification", registered with transformers on import.
from .pipeline_multitask import PIPELINE_TASK, MultiTaskTextClassificationPipeline  # noqa: E402
from .postprocessing import decode_outputs, decode_task  # noqa: E402

__all__ += ["PIPELINE_TASK", "MultiTaskTextClassificationPipeline", "decode_outputs", "decode_task"]
