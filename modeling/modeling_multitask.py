"""MultiTaskModel: one shared `AutoModel` encoder, a pooling layer and one `TaskHead` per task.

`forward` returns raw logits for classification tasks and predictions in the user's units for regression tasks,
and computes the (masked, per-task) losses when `labels_<task>` tensors are passed.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_multitask import MultiTaskConfig, label_key
from .losses import UncertaintyWeighting, compute_task_loss, count_labels
from .pooling import build_pooling

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}
# Where the common encoders keep their embeddings module and their list of transformer blocks.
EMBEDDING_PATHS = ("embeddings", "embed_tokens", "wte")
LAYER_PATHS = ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "layer", "h")


@dataclass
class MultiTaskOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, *optional*, returned when labels are given):
        Combined loss (fixed or uncertainty weighting) over the tasks with labels in the batch.
    logits (`dict[str, torch.FloatTensor]`):
        Per task: multiclass `(B, C)` and multilabel `(B, L)` raw logits, binary `(B,)` raw logit, regression
        `(B, K)` predictions in the user's units.
    task_losses (`dict[str, torch.FloatTensor]`, *optional*):
        Unweighted loss of each task that got labels.
    pooled_output (`torch.FloatTensor` of shape `(B, D)`):
        The pooled sentence embedding the heads read.
    log_variances (`dict[str, torch.FloatTensor]`, *optional*):
        Regression tasks with `gaussian_nll`: predicted log-variance `(B, K)` in standardised space.
    """

    loss: torch.FloatTensor | None = None
    logits: dict[str, torch.FloatTensor] | None = None
    task_losses: dict[str, torch.FloatTensor] | None = None
    pooled_output: torch.FloatTensor | None = None
    log_variances: dict[str, torch.FloatTensor] | None = None


class HeadBlock(nn.Module):
    """Linear -> LayerNorm -> activation -> Dropout, with an optional residual (projected when sizes differ)."""

    def __init__(self, in_dim: int, out_dim: int, config: MultiTaskConfig):
        super().__init__()
        self.dense = nn.Linear(in_dim, out_dim)
        self.norm = nn.LayerNorm(out_dim) if config.head_layer_norm else nn.Identity()
        self.activation = ACTIVATIONS[config.head_activation]()
        self.dropout = nn.Dropout(config.head_dropout)
        self.residual = None
        if config.head_residual:
            self.residual = nn.Identity() if in_dim == out_dim else nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout(self.activation(self.norm(self.dense(x))))  # (B, out_dim)
        return out if self.residual is None else out + self.residual(x)


class TaskHead(nn.Module):
    """Dropout on the pooled vector, the hidden blocks, then a Linear sized for the task."""

    def __init__(self, input_dim: int, output_dim: int, config: MultiTaskConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.head_dropout)
        dims = [input_dim, *config.head_hidden_dims]
        self.blocks = nn.ModuleList(HeadBlock(dims[i], dims[i + 1], config) for i in range(len(dims) - 1))
        self.output = nn.Linear(dims[-1], output_dim)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        x = self.dropout(pooled)  # (B, D)
        for block in self.blocks:
            x = block(x)  # (B, hidden_i)
        return self.output(x)  # (B, output_dim)


def head_output_size(task: dict) -> int:
    """Binary: 1 logit; regression: K (2K with a predicted log-variance); otherwise one logit per label."""
    if task["type"] == "binary":
        return 1
    if task["type"] == "regression" and task["loss"] == "gaussian_nll":
        return 2 * len(task["labels"])
    return len(task["labels"])


def build_encoder(encoder_config) -> PreTrainedModel:
    """`AutoModel.from_config`, without the unused pooler layer where the architecture has one."""
    try:
        model_class = AutoModel._model_mapping[type(encoder_config)]
    except KeyError:
        return AutoModel.from_config(encoder_config)
    kwargs = {"add_pooling_layer": False} if "add_pooling_layer" in inspect.signature(model_class).parameters else {}
    return model_class(encoder_config, **kwargs)


class MultiTaskPreTrainedModel(PreTrainedModel):
    config: MultiTaskConfig
    config_class = MultiTaskConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        """Normal(0, initializer_range) Linear weights, zero biases, unit LayerNorms, zero task log-variances."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, UncertaintyWeighting):
            init.zeros_(module.log_variances)


class MultiTaskModel(MultiTaskPreTrainedModel):
    """Shared encoder + pooling + one head per task; see `MultiTaskConfig` for the task schema.

    Set `config.loss_weighting="uncertainty"` to learn task weights (`self.uncertainty`); `set_encoder_frozen(True)`
    trains only pooling, heads and task weights.
    """

    # The Trainer must not pass `num_items_in_batch`: every task loss is a masked mean of its own.
    accepts_loss_kwargs = False

    def __init__(self, config: MultiTaskConfig):
        super().__init__(config)
        if not config.tasks:
            raise ValueError("tasks: the config has no tasks; pass tasks=[{'name': ..., 'type': ...}, ...]")
        self.encoder = build_encoder(config.encoder_config)
        self.pooler = build_pooling(config.pooling, config.encoder_config.hidden_size)
        pooled_dim = self.pooler.output_dim()
        self.heads = nn.ModuleDict(
            {task["name"]: TaskHead(pooled_dim, head_output_size(task), config) for task in config.tasks}
        )
        self.uncertainty = None
        if config.loss_weighting == "uncertainty":
            self.uncertainty = UncertaintyWeighting(config.task_names, [t["type"] for t in config.tasks])
        encoder_params = inspect.signature(self.encoder.forward).parameters
        self._encoder_takes_token_types = "token_type_ids" in encoder_params
        self._encoder_frozen = False
        self.post_init()

    @classmethod
    def from_backbone(cls, name_or_path: str, tasks: list[dict], **config_kwargs) -> MultiTaskModel:
        """Build a model around a pretrained encoder (name or local folder): pretrained encoder, fresh heads."""
        encoder_config = AutoConfig.from_pretrained(name_or_path)
        config = MultiTaskConfig(encoder_config=encoder_config, encoder_name_or_path=str(name_or_path), tasks=tasks,
                                 **config_kwargs)
        model = cls(config)
        pretrained = AutoModel.from_pretrained(name_or_path, config=encoder_config)
        state = {k: v for k, v in pretrained.state_dict().items() if k in model.encoder.state_dict()}
        missing = sorted(set(model.encoder.state_dict()) - set(state))
        if missing:
            raise ValueError(f"from_backbone: {name_or_path!r} lacks encoder weights {missing[:5]}")
        model.encoder.load_state_dict(state)
        return model

    # ----- encoder access for freezing -----

    def _resolve(self, paths: tuple[str, ...], kind: type | tuple[type, ...], what: str) -> nn.Module:
        for path in paths:
            module = self.encoder
            for part in path.split("."):
                module = getattr(module, part, None)
            if isinstance(module, kind):
                return module
        raise ValueError(f"{what}: cannot find it in encoder {type(self.encoder).__name__} "
                         f"(model_type {self.config.encoder_config.model_type!r}); tried attributes {list(paths)}. "
                         "Supported: BERT/MiniLM, DistilBERT, RoBERTa, XLM-R, MPNet and encoders using these names.")

    def get_encoder_embeddings(self) -> nn.Module:
        """The encoder's embeddings module (word + position (+ type) embeddings)."""
        return self._resolve(EMBEDDING_PATHS, nn.Module, "encoder embeddings")

    def get_encoder_layers(self) -> nn.ModuleList:
        """The encoder's transformer blocks, bottom to top."""
        return self._resolve(LAYER_PATHS, nn.ModuleList, "encoder layers")

    def set_encoder_frozen(self, frozen: bool) -> None:
        """Freeze (True) or unfreeze (False) the whole encoder: requires_grad, eval mode and no_grad in forward."""
        self._encoder_frozen = bool(frozen)
        for param in self.encoder.parameters():
            param.requires_grad_(not frozen)
        self.encoder.train(self.training and not frozen)

    @property
    def encoder_frozen(self) -> bool:
        return self._encoder_frozen

    def train(self, mode: bool = True) -> MultiTaskModel:
        """Like `nn.Module.train`, but a frozen encoder stays in eval mode (no dropout)."""
        super().train(mode)
        if self._encoder_frozen:
            self.encoder.eval()
        return self

    # ----- losses -----

    def combine_task_losses(self, task_losses: dict[str, torch.Tensor],
                            present: dict[str, bool] | None = None) -> torch.Tensor:
        """Total loss: fixed -> sum_t weight_t * L_t; uncertainty -> `UncertaintyWeighting` (Kendall et al. 2018).

        `present[t] = False` marks a task without any label in the batch (its loss is a graph-connected zero):
        uncertainty weighting then skips its regulariser too.
        """
        fixed = {t["name"]: t["weight"] for t in self.config.tasks}
        if self.uncertainty is not None:
            return self.uncertainty(task_losses, fixed, present)
        losses = [fixed[name] * loss for name, loss in task_losses.items()]
        return torch.stack(losses).sum()

    def task_weights(self) -> dict[str, float]:
        """Current effective weight of each task loss (for logging)."""
        fixed = {t["name"]: t["weight"] for t in self.config.tasks}
        return fixed if self.uncertainty is None else self.uncertainty.effective_weights(fixed)

    # ----- forward -----

    def _split_labels(self, labels: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor]:
        keys = {label_key(name): name for name in self.config.task_names}
        unknown = sorted(set(labels) - set(keys))
        if unknown:
            raise ValueError(f"forward: unexpected keyword argument(s) {unknown}; "
                             f"allowed label keys: {sorted(keys)}")
        return {keys[k]: v for k, v in labels.items() if v is not None}

    def _encode(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and self._encoder_takes_token_types:
            inputs["token_type_ids"] = token_type_ids
        frozen = torch.no_grad() if self._encoder_frozen else contextlib.nullcontext()
        with frozen:
            return self.encoder(**inputs).last_hidden_state  # (B, T, H)

    def _task_output(self, task: dict, raw: torch.Tensor):
        """(logits or user-unit predictions, standardised prediction for the loss, log-variance or None)."""
        if task["type"] == "binary":
            return raw.squeeze(-1), raw.squeeze(-1), None  # (B,)
        if task["type"] != "regression":
            return raw, raw, None  # (B, C) / (B, L)
        k = len(task["labels"])
        z, log_var = raw[:, :k], (raw[:, k:] if task["loss"] == "gaussian_nll" else None)  # (B, K)
        mean = torch.as_tensor(task["target_mean"], dtype=z.dtype, device=z.device)  # (K,)
        std = torch.as_tensor(task["target_std"], dtype=z.dtype, device=z.device)  # (K,)
        if task["output_range"] is None:
            return z * std + mean, z, log_var
        low, high = task["output_range"]
        prediction = low + (high - low) * torch.sigmoid(z)  # (B, K), user's units, bounded
        return prediction, (prediction - mean) / std, log_var

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, **labels: torch.Tensor) -> MultiTaskOutput:
        """Encode, pool, run every head; with `labels_<task>=tensor` arguments also compute the losses."""
        task_labels = self._split_labels(labels)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden_states = self._encode(input_ids, attention_mask, token_type_ids)  # (B, T, H)
        pooled = self.pooler(hidden_states, attention_mask)  # (B, D)
        logits, task_losses, log_variances, present = {}, {}, {}, {}
        for task in self.config.tasks:
            name = task["name"]
            raw = self.heads[name](pooled)  # (B, out)
            logits[name], for_loss, log_var = self._task_output(task, raw)
            if log_var is not None:
                log_variances[name] = log_var
            if name in task_labels:
                target = self._check_label_shape(task, task_labels[name], logits[name])
                present[name] = count_labels(task, target) > 0
                task_losses[name] = compute_task_loss(task, for_loss, target, log_var)
        loss = self.combine_task_losses(task_losses, present) if task_losses else None
        return MultiTaskOutput(loss=loss, logits=logits, task_losses=task_losses or None, pooled_output=pooled,
                               log_variances=log_variances or None)

    @staticmethod
    def _check_label_shape(task: dict, target: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        expected = output.shape[:1] if task["type"] == "multiclass" else output.shape
        if target.shape != expected:
            raise ValueError(f"{label_key(task['name'])}: expected shape {tuple(expected)} for a {task['type']} "
                             f"task, got {tuple(target.shape)}")
        return target.to(output.device)


__all__ = ["MultiTaskModel", "MultiTaskOutput", "MultiTaskPreTrainedModel", "TaskHead", "HeadBlock"]
