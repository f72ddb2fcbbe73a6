"""Optimizer parameter groups: separate backbone / head learning rates, layer-wise LR decay, selective weight decay.

Every parameter goes into a group, trainable or not at build time. That is what makes progressive unfreezing work:
the stock Trainer builds its optimizer from `requires_grad=True` parameters only, so a layer frozen then is never
trained after it is unfrozen. Torch optimizers skip parameters whose `.grad` is None, so frozen ones cost nothing.
"""

from __future__ import annotations

from collections import defaultdict

from torch import nn


def _no_decay(name: str, decay_names: set[str]) -> bool:
    return name not in decay_names or "log_var" in name or name.startswith("uncertainty")


def encoder_depths(model) -> dict[int, int]:
    """id(parameter) -> depth below the top of the encoder: top layer 0, bottom layer L-1, embeddings L."""
    layers = model.get_encoder_layers()
    depths = {id(p): len(layers) for p in model.get_encoder_embeddings().parameters()}
    for index, layer in enumerate(layers):
        depths.update({id(p): len(layers) - 1 - index for p in layer.parameters()})
    return depths


def build_parameter_groups(
    model: nn.Module,
    decay_names: set[str],
    base_lr: float,
    weight_decay: float,
    backbone_lr: float | None = None,
    head_lr: float | None = None,
    layer_lr_decay: float = 1.0,
) -> list[dict]:
    """Group every named parameter by (learning rate, weight decay).

    Encoder parameters train at `backbone_lr * layer_lr_decay ** depth` (depth 0 = top layer; the embeddings are
    deepest), everything else (pooling, heads, task log-variances) at `head_lr`. Biases, LayerNorm weights and
    log-variances get no weight decay.
    """
    backbone_lr = base_lr if backbone_lr is None else backbone_lr
    head_lr = base_lr if head_lr is None else head_lr
    depths = encoder_depths(model)
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    buckets: dict[tuple[float, float], list[nn.Parameter]] = defaultdict(list)
    for name, parameter in model.named_parameters():
        if id(parameter) in encoder_ids:
            lr = backbone_lr * layer_lr_decay ** depths.get(id(parameter), 0)
        else:
            lr = head_lr
        decay = 0.0 if _no_decay(name, decay_names) else weight_decay
        buckets[(lr, decay)].append(parameter)
    return [{"params": params, "lr": lr, "weight_decay": decay} for (lr, decay), params in buckets.items()]
