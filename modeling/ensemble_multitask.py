"""An ensemble of multi-task models as one `PreTrainedModel`: one folder, one forward pass, one ONNX graph.

Every member is a complete `MultiTaskModel` (its own encoder, pooling and heads) over the same tokenizer. Per task,
the ensemble averages the members' probabilities (softmax for multiclass, sigmoid for multilabel and binary) or
regression predictions with that task's weights, and returns the average as logits again (log-probabilities,
log-odds), so temperatures, thresholds and decoding apply exactly as for a single model. The members' own
calibration is not used: the ensemble is calibrated on its own outputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel

from .configuration_multitask import MultiTaskConfig
from .modeling_multitask import MultiTaskModel, MultiTaskOutput
from .task_schema import finite_float, normalize_tasks

_EPS = 1e-7


def _fail(where: str, message: str) -> None:
    raise ValueError(f"{where}: {message}")


def _task_signature(tasks: list[dict]) -> list[tuple]:
    return [(t["name"], t["type"], tuple(t["labels"])) for t in tasks]


class MultiTaskEnsembleConfig(PreTrainedConfig):
    r"""
    Configuration of a [`MultiTaskEnsembleModel`].

    Args:
        members (`list[dict]`): the `MultiTaskConfig` of every member, as dicts (at least two).
        member_names (`list[str]`, *optional*): where each member came from (for reports and the model card).
        weights (`dict[str, list[float]]`): per task, one non-negative weight per member (normalised to sum 1);
            a task left out gets equal weights.
        tasks (`list[dict]`, *optional*): the task dicts (default: the first member's, without its calibration);
            every member must predict the same tasks with the same labels.
        thresholds / temperatures: the ensemble's own calibration, as in `MultiTaskConfig`.
        max_length (`int`, *optional*) / truncation_side (`str`): how texts are cut, shared by all members.
    """

    model_type = "multitask_ensemble"

    members: list[dict] | None = None
    member_names: list[str] | None = None
    weights: dict[str, list[float]] | None = None
    tasks: list[dict] | None = None
    thresholds: dict[str, dict[str, float]] | None = None
    temperatures: dict[str, float] | None = None
    max_length: int | None = None
    truncation_side: str = "right"

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.members is not None:
            self.check_multitask_fields()

    def check_multitask_fields(self) -> None:
        """Members and tasks agree, weights are one per member; thresholds and temperatures are checked the way
        a single model's are."""
        members = [m.to_dict() if isinstance(m, PreTrainedConfig) else dict(m) for m in self.members]
        if len(members) < 2:
            _fail("members", f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = members
        self.tasks = normalize_tasks(self.tasks or members[0]["tasks"])
        for index, member in enumerate(members):
            if _task_signature(normalize_tasks(member["tasks"])) != _task_signature(self.tasks):
                _fail(f"members[{index}]", "predicts other tasks or labels than the ensemble; members must share "
                                           f"every task name, type and label ({[t['name'] for t in self.tasks]})")
        self.weights = {name: self._task_weights(name, (self.weights or {}).get(name)) for name in self.task_names}
        self.thresholds, self.temperatures = dict(self.thresholds or {}), dict(self.temperatures or {})
        MultiTaskConfig(encoder_config=members[0]["encoder_config"], tasks=self.tasks, thresholds=self.thresholds,
                        temperatures=self.temperatures, max_length=self.max_length,
                        truncation_side=self.truncation_side)  # the same checks as a single model's

    def _task_weights(self, task: str, weights: Any) -> list[float]:
        count = len(self.members)
        if weights is None:
            return [1.0 / count] * count
        if not isinstance(weights, (list, tuple)) or len(weights) != count:
            _fail(f"weights[{task!r}]", f"expected {count} numbers (one per member), got {weights!r}")
        values = [finite_float(f"weights[{task!r}][{i}]", w) for i, w in enumerate(weights)]
        if min(values) < 0 or sum(values) <= 0:
            _fail(f"weights[{task!r}]", f"must be >= 0 with a positive sum, got {values}")
        return [v / sum(values) for v in values]

    @property
    def task_names(self) -> list[str]:
        return [task["name"] for task in self.tasks or []]

    def get_task(self, name: str) -> dict:
        return next(t for t in self.tasks if t["name"] == name)


def combine(task: dict, outputs: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """Weighted average of the members' probabilities (returned as logits again) or regression predictions."""
    w = torch.as_tensor(weights, dtype=torch.float32, device=outputs[0].device)
    stacked = torch.stack([o.float() for o in outputs])  # (M, B, ...)
    w = w.reshape(-1, *([1] * (stacked.dim() - 1)))  # (M, 1, ...)
    if task["type"] == "regression":
        return (w * stacked).sum(dim=0)
    if task["type"] == "multiclass":
        probs = (w * torch.softmax(stacked, dim=-1)).sum(dim=0)  # (B, C)
        return torch.log(probs.clamp_min(_EPS))
    probs = (w * torch.sigmoid(stacked)).sum(dim=0).clamp(_EPS, 1 - _EPS)  # (B, L) or (B,)
    return torch.log(probs) - torch.log1p(-probs)


class MultiTaskEnsembleModel(PreTrainedModel):
    """Members run on the same tokens; per task their outputs are averaged with the config's weights."""

    config: MultiTaskEnsembleConfig
    config_class = MultiTaskEnsembleConfig
    base_model_prefix = "ensemble"
    _supports_sdpa = True
    accepts_loss_kwargs = False

    def __init__(self, config: MultiTaskEnsembleConfig, members: list[MultiTaskModel] | None = None):
        super().__init__(config)
        if members is None:
            members = [MultiTaskModel(MultiTaskConfig.from_dict(member)) for member in config.members]
        self.members = nn.ModuleList(members)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Nothing of its own to initialise: members are complete models."""

    @property
    def accepts_token_type_ids(self) -> bool:
        return any(member.accepts_token_type_ids for member in self.members)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> MultiTaskOutput:
        """Every member on the same batch; `logits[task]` is the weighted average, as logits."""
        outputs = [member(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
                   for member in self.members]
        logits = {task["name"]: combine(task, [o.logits[task["name"]] for o in outputs],
                                        self.config.weights[task["name"]]) for task in self.config.tasks}
        return MultiTaskOutput(logits=logits)


AutoConfig.register(MultiTaskEnsembleConfig.model_type, MultiTaskEnsembleConfig, exist_ok=True)
AutoModel.register(MultiTaskEnsembleConfig, MultiTaskEnsembleModel, exist_ok=True)
MultiTaskEnsembleConfig.register_for_auto_class()
MultiTaskEnsembleModel.register_for_auto_class("AutoModel")

__all__ = ["MultiTaskEnsembleConfig", "MultiTaskEnsembleModel", "combine"]
