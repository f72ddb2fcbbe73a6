"""MultiTaskModel: one shared `AutoModel` encoder, a pooling layer and one `TaskHead` per task.

`forward` returns raw logits for classification tasks and predictions in the user's units for regression tasks,
and computes the (masked, per-task) losses when `labels_<task>` tensors are passed.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput
from transformers.utils import logging as hf_logging
from transformers.utils.generic import can_return_tuple

from .configuration_multitask import MultiTaskConfig
from .losses import UncertaintyWeighting, compute_task_loss, labelled_row_count
from .pooling import build_pooling
from .serving import check_saved_folder
from .task_schema import head_output_size, label_key

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
    hidden_states (`tuple[torch.FloatTensor]`, *optional*, returned with `output_hidden_states=True`):
        The encoder's hidden states, embeddings first, each `(B, T, H)`.
    attentions (`tuple[torch.FloatTensor]`, *optional*, returned with `output_attentions=True`):
        The encoder's attention weights per layer, each `(B, heads, T, T)` (needs eager attention).
    """

    loss: torch.FloatTensor | None = None
    logits: dict[str, torch.FloatTensor] | None = None
    task_losses: dict[str, torch.FloatTensor] | None = None
    pooled_output: torch.FloatTensor | None = None
    log_variances: dict[str, torch.FloatTensor] | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


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


def encoder_kwargs(encoder_config) -> dict[str, bool]:
    """Keyword arguments that build an encoder without its pooler layer, where its `AutoModel` class has one: the
    pooling module reads the token states, so the pooler would be unused weights."""
    try:
        model_class = AutoModel._model_mapping[type(encoder_config)]
    except KeyError:
        return {}
    return {"add_pooling_layer": False} if "add_pooling_layer" in inspect.signature(model_class).parameters else {}


def build_encoder(encoder_config) -> PreTrainedModel:
    """`AutoModel.from_config`, without the unused pooler layer where the architecture has one."""
    return AutoModel.from_config(encoder_config, **encoder_kwargs(encoder_config))


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

    def __init__(self, config: MultiTaskConfig, encoder: PreTrainedModel | None = None):
        super().__init__(config)
        if not config.tasks:
            raise ValueError("tasks: the config has no tasks; pass tasks=[{'name': ..., 'type': ...}, ...]")
        if encoder is None:
            encoder = build_encoder(config.encoder_config)
        else:  # a pretrained encoder: its (flagged as initialised) weights are left alone by post_init
            config.encoder_config = encoder.config
        self.encoder = encoder
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
        self.weight_multipliers: dict[str, float] = {}
        self.post_init()

    @classmethod
    def from_backbone(cls, name_or_path: str, tasks: list[dict], dtype=None, attn_implementation: str | None = None,
                      **config_kwargs) -> MultiTaskModel:
        """Pretrained encoder (name or local folder, loaded once) with fresh heads for `tasks`.

        `dtype` and `attn_implementation` go to the encoder's `from_pretrained`; `config_kwargs` to
        `MultiTaskConfig`.
        """
        encoder_config = AutoConfig.from_pretrained(name_or_path)
        kwargs = {key: value for key, value in (("dtype", dtype), ("attn_implementation", attn_implementation))
                  if value is not None}
        kwargs.update(encoder_kwargs(encoder_config))
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the skipped pooler's weights would be listed as unexpected
        try:
            encoder = AutoModel.from_pretrained(name_or_path, config=encoder_config, **kwargs)
        finally:
            hf_logging.set_verbosity(verbosity)
        # Built from the config as loaded, not `encoder.config`: a new MultiTaskConfig resets the attention
        # implementation of its sub-configs, which `__init__` then takes back from the encoder.
        config = MultiTaskConfig(encoder_config=encoder_config, encoder_name_or_path=str(name_or_path), tasks=tasks,
                                 **config_kwargs)
        return cls(config, encoder=encoder)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`; a local folder is checked first (config of this model type, readable
        weights), so an incomplete or corrupt save fails with one `SavedModelError` line naming the file."""
        if isinstance(pretrained_model_name_or_path, (str, os.PathLike)) and os.path.isdir(
                pretrained_model_name_or_path) and not kwargs.get("subfolder"):
            check_saved_folder(pretrained_model_name_or_path, tokenizer=False)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

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
    def accepts_token_type_ids(self) -> bool:
        """Whether the encoder reads `token_type_ids` (DistilBERT, for one, does not)."""
        return self._encoder_takes_token_types

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
                            present: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Total loss: fixed -> sum_t weight_t * L_t; uncertainty -> `UncertaintyWeighting` (Kendall et al. 2018).

        `present[t]` (a bool tensor) is False for a task without any label in the batch (its loss is a
        graph-connected zero): uncertainty weighting then drops its regulariser too.
        """
        fixed = self.scheduled_weights()
        if self.uncertainty is not None:
            return self.uncertainty(task_losses, fixed, present)
        losses = [fixed[name] * loss for name, loss in task_losses.items()]
        return torch.stack(losses).sum()

    def scheduled_weights(self) -> dict[str, float]:
        """Each task's fixed weight times its current multiplier (set during training by a balancing strategy or
        a curriculum; 1 otherwise)."""
        return {t["name"]: t["weight"] * self.weight_multipliers.get(t["name"], 1.0) for t in self.config.tasks}

    def task_weights(self) -> dict[str, float]:
        """Current effective weight of each task loss (for logging)."""
        fixed = self.scheduled_weights()
        return fixed if self.uncertainty is None else self.uncertainty.effective_weights(fixed)

    # ----- forward -----

    def _split_labels(self, labels: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor]:
        keys = {label_key(name): name for name in self.config.task_names}
        unknown = sorted(set(labels) - set(keys))
        if unknown:
            raise TypeError(f"MultiTaskModel.forward() got unexpected keyword argument(s) {unknown}; besides the "
                            f"encoder inputs and output flags it takes the label keys {sorted(keys)}")
        return {keys[k]: v for k, v in labels.items() if v is not None}

    def _encode(self, input_ids, attention_mask, token_type_ids, flags: dict[str, bool]):
        """The encoder's output (last_hidden_state (B, T, H), plus hidden states / attentions when asked)."""
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "return_dict": True, **flags}
        if token_type_ids is not None and self._encoder_takes_token_types:
            inputs["token_type_ids"] = token_type_ids
        frozen = torch.no_grad() if self._encoder_frozen else contextlib.nullcontext()
        with frozen:
            return self.encoder(**inputs)

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

    @can_return_tuple
    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, pooled_output: torch.Tensor | None = None,
                output_hidden_states: bool | None = None, output_attentions: bool | None = None,
                **labels: torch.Tensor) -> MultiTaskOutput:
        """Encode, pool, run every head; with `labels_<task>=tensor` arguments also compute the losses.

        `pooled_output` (B, D) replaces encoder and pooling: the frozen-encoder embedding cache feeds the heads
        with vectors it computed once. `output_hidden_states` / `output_attentions` reach the encoder (None: its
        config decides); `return_dict=False` returns a tuple of the non-None fields.
        """
        task_labels = self._split_labels(labels)
        encoded = None
        if pooled_output is None:
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            flags = {k: v for k, v in (("output_hidden_states", output_hidden_states),
                                       ("output_attentions", output_attentions)) if v is not None}
            encoded = self._encode(input_ids, attention_mask, token_type_ids, flags)
            pooled_output = self.pooler(encoded.last_hidden_state, attention_mask)  # (B, D)
        logits, task_losses, log_variances, present = self._run_heads(pooled_output, task_labels)
        loss = self.combine_task_losses(task_losses, present) if task_losses else None
        return MultiTaskOutput(loss=loss, logits=logits, task_losses=task_losses or None, pooled_output=pooled_output,
                               log_variances=log_variances or None,
                               hidden_states=getattr(encoded, "hidden_states", None),
                               attentions=getattr(encoded, "attentions", None))

    def _run_heads(self, pooled: torch.Tensor, task_labels: dict[str, torch.Tensor]):
        """Every head on the pooled vectors: (logits, task losses, log-variances, label presence), keyed by task."""
        logits, task_losses, log_variances, present = {}, {}, {}, {}
        for task in self.config.tasks:
            name = task["name"]
            raw = self.heads[name](pooled)  # (B, out)
            logits[name], for_loss, log_var = self._task_output(task, raw)
            if log_var is not None:
                log_variances[name] = log_var
            if name in task_labels:
                target = self._check_label_shape(task, task_labels[name], logits[name])
                present[name] = labelled_row_count(target) > 0
                task_losses[name] = compute_task_loss(task, for_loss, target, log_var)
        return logits, task_losses, log_variances, present

    def predicted_std(self, log_variances: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        """Standard deviation in the user's units of each `gaussian_nll` head, from its predicted log-variance
        (which lives in the standardised target space): exp(log_var / 2) * target_std."""
        out = {}
        for name, log_var in (log_variances or {}).items():
            std = torch.as_tensor(self.config.get_task(name)["target_std"], dtype=log_var.dtype, device=log_var.device)
            out[name] = torch.exp(0.5 * log_var) * std  # (B, K)
        return out

    @staticmethod
    def _check_label_shape(task: dict, target: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        expected = output.shape[:1] if task["type"] == "multiclass" else output.shape
        if target.shape != expected:
            raise ValueError(f"{label_key(task['name'])}: expected shape {tuple(expected)} for a {task['type']} "
                             f"task, got {tuple(target.shape)}")
        return target.to(output.device)


AutoModel.register(MultiTaskConfig, MultiTaskModel, exist_ok=True)
MultiTaskModel.register_for_auto_class("AutoModel")

__all__ = ["MultiTaskModel", "MultiTaskOutput", "MultiTaskPreTrainedModel", "TaskHead", "HeadBlock"]
