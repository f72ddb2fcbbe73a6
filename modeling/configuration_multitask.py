"""MultiTaskConfig: the backbone's config, the task list (plain JSON) and the head / pooling / loss settings.

Everything a saved model needs to rebuild itself lives here, so `from_pretrained` works without the original
checkpoint or this repository. Tasks are plain dicts (schema in `task_schema.py`); every dict is validated and
completed with defaults when the config is built, so a bad value fails early with a `ValueError` naming the field.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, ClassVar

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .pooling import POOLING_CLASSES
from .task_schema import CLASSIFICATION_TYPES, SIGMOID_TYPES, find_task, finite_float, normalize_tasks

POOLING_OPTIONS = tuple(POOLING_CLASSES)
LOSS_WEIGHTING_OPTIONS = ("fixed", "uncertainty")
HEAD_ACTIVATIONS = ("gelu", "relu", "tanh", "silu")
TRUNCATION_SIDES = ("right", "left")


def _fail(where: str, message: str) -> None:
    raise ValueError(f"{where}: {message}")


class MultiTaskConfig(PreTrainedConfig):
    r"""
    Configuration of a [`MultiTaskModel`]: one shared encoder, one head per task.

    Args:
        encoder_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of the backbone encoder (any `AutoModel` encoder), kept nested so a saved model rebuilds its
            encoder without the original checkpoint. Defaults to a BERT config.
        encoder_name_or_path (`str`, *optional*):
            Where the backbone came from (for tokenizers and model cards); not needed to load the model.
        tasks (`list[dict]`, *optional*):
            The task dicts (schema in `TASK_DEFAULTS`). `None` means "not set yet"; an empty list is an error.
        pooling (`str`, *optional*, defaults to `"mean"`):
            One of `cls`, `mean`, `max`, `mean_max`, `attention`.
        head_hidden_dims (`list[int]`, *optional*, defaults to `[256, 128]`):
            Hidden layer sizes of every task head (empty: a single linear layer).
        head_dropout (`float`, *optional*, defaults to 0.3): dropout in the heads.
        head_layer_norm (`bool`, *optional*, defaults to `True`): LayerNorm after each hidden Linear.
        head_residual (`bool`, *optional*, defaults to `False`): residual connection around each hidden block.
        head_activation (`str`, *optional*, defaults to `"gelu"`): one of `gelu`, `relu`, `tanh`, `silu`.
        loss_weighting (`str`, *optional*, defaults to `"fixed"`): `fixed` or `uncertainty` (Kendall et al. 2018).
        thresholds (`dict[str, dict[str, float]]`, *optional*):
            Per-label decision thresholds of multilabel / binary tasks (binary: keyed by the positive label).
        temperatures (`dict[str, float]`, *optional*): per-task softmax / sigmoid temperatures.
        initializer_range (`float`, *optional*, defaults to 0.02): std of the normal init of the head weights.
        max_length (`int`, *optional*):
            Tokens per text the model was trained on (`--max-length`); every serving path truncates there, so
            predictions see what training saw. `None`: the encoder's own limit.
        truncation_side (`str`, *optional*, defaults to `"right"`): which end of a long text is cut (`right`, `left`).
    """

    model_type = "multitask_text"
    sub_configs_defaults = {"encoder_config": SubConfigSpec(config_class=AutoConfig, model_type="bert")}
    # The Trainer drops these output keys at prediction time, so `predictions` is the `{task: logits}` dict.
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["task_losses", "pooled_output", "log_variances"]

    encoder_config: dict | PreTrainedConfig | None = None
    encoder_name_or_path: str | None = None
    tasks: list[dict] | None = None
    pooling: str = "mean"
    head_hidden_dims: list[int] = field(default_factory=lambda: [256, 128])
    head_dropout: float = 0.3
    head_layer_norm: bool = True
    head_residual: bool = False
    head_activation: str = "gelu"
    loss_weighting: str = "fixed"
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    temperatures: dict[str, float] = field(default_factory=dict)
    initializer_range: float = 0.02
    max_length: int | None = None
    truncation_side: str = "right"

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.check_multitask_fields()

    def validate(self) -> None:
        """Run transformers' own checks plus ours (also at `save_pretrained`, after calibration edited the config)."""
        super().validate()
        self.check_multitask_fields()

    def check_multitask_fields(self) -> None:
        """Validate every field of this class; tasks are completed with their defaults."""
        if self.tasks is not None:
            self.tasks = normalize_tasks(self.tasks)
        self._check_choice("pooling", self.pooling, POOLING_OPTIONS)
        self._check_choice("loss_weighting", self.loss_weighting, LOSS_WEIGHTING_OPTIONS)
        self._check_choice("head_activation", self.head_activation, HEAD_ACTIVATIONS)
        dims = self.head_hidden_dims
        if not isinstance(dims, (list, tuple)) or any(isinstance(d, bool) or not isinstance(d, int) or d < 1
                                                       for d in dims):
            _fail("head_hidden_dims", f"expected a list of positive ints (e.g. [256, 128]), got {dims!r}")
        self.head_hidden_dims = list(dims)
        dropout = finite_float("head_dropout", self.head_dropout)
        if not 0.0 <= dropout < 1.0:
            _fail("head_dropout", f"must be in [0, 1), got {dropout}")
        for flag in ("head_layer_norm", "head_residual"):
            if not isinstance(getattr(self, flag), bool):
                _fail(flag, f"expected true or false, got {getattr(self, flag)!r}")
        self._check_thresholds()
        self._check_temperatures()
        self._check_tokenization()

    def _check_tokenization(self) -> None:
        if self.max_length is not None and (isinstance(self.max_length, bool) or not isinstance(self.max_length, int)
                                            or self.max_length < 2):
            _fail("max_length", f"expected an int >= 2 (or null for the encoder's limit), got {self.max_length!r}")
        self._check_choice("truncation_side", self.truncation_side, TRUNCATION_SIDES)

    @staticmethod
    def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            _fail(name, f"{value!r} is not supported; allowed: {list(allowed)}")

    def _check_thresholds(self) -> None:
        if not isinstance(self.thresholds, dict):
            _fail("thresholds", f"expected {{task: {{label: float}}}}, got {self.thresholds!r}")
        for task_name, per_label in self.thresholds.items():
            task = self._task_for("thresholds", task_name, SIGMOID_TYPES)
            allowed = task["labels"][1:] if task["type"] == "binary" else task["labels"]
            if not isinstance(per_label, dict):
                _fail(f"thresholds[{task_name!r}]", f"expected {{label: float}}, got {per_label!r}")
            for label, value in per_label.items():
                if label not in allowed:
                    _fail(f"thresholds[{task_name!r}]", f"unknown label {label!r}; allowed: {allowed}")
                value = finite_float(f"thresholds[{task_name!r}][{label!r}]", value)
                if not 0.0 <= value <= 1.0:
                    _fail(f"thresholds[{task_name!r}][{label!r}]", f"must be in [0, 1], got {value}")

    def _check_temperatures(self) -> None:
        if not isinstance(self.temperatures, dict):
            _fail("temperatures", f"expected {{task: float}}, got {self.temperatures!r}")
        for task_name, value in self.temperatures.items():
            self._task_for("temperatures", task_name, CLASSIFICATION_TYPES)
            if finite_float(f"temperatures[{task_name!r}]", value) <= 0:
                _fail(f"temperatures[{task_name!r}]", f"must be > 0, got {value}")

    def _task_for(self, field_name: str, task_name: str, types: tuple[str, ...]) -> dict:
        allowed = [t["name"] for t in self.tasks or [] if t["type"] in types]
        if task_name not in allowed:
            _fail(field_name, f"unknown task {task_name!r}; allowed (tasks of type {list(types)}): {allowed}")
        return self.get_task(task_name)

    @property
    def task_names(self) -> list[str]:
        """Task names in config order (also the order of `label_names` and of `EvalPrediction.label_ids`)."""
        return [task["name"] for task in self.tasks or []]

    def get_task(self, name: str) -> dict:
        """The completed task dict called `name`."""
        return find_task(self.tasks or [], name)


AutoConfig.register(MultiTaskConfig.model_type, MultiTaskConfig, exist_ok=True)
MultiTaskConfig.register_for_auto_class()

__all__ = ["MultiTaskConfig", "POOLING_OPTIONS"]
