"""Trainer callbacks: encoder freezing strategies and a log line whenever the trainable parameter count changes.

Freezing only flips `requires_grad` (and, for a fully frozen encoder, runs it without autograd in eval mode). The
optimizer is built over every parameter up front (see `training.optimization`), so a layer unfrozen later really
trains: torch optimizers skip parameters whose gradient is None, so frozen ones cost nothing and take no decay.
Early stopping is transformers' own `EarlyStoppingCallback`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from torch import nn
from transformers import TrainerCallback

from training.outputs import give_plain_modes

logger = logging.getLogger(__name__)


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(flag)


def freeze_bottom(model, num_layers: int) -> None:
    """Freeze the embeddings and the bottom `num_layers` encoder layers; everything above trains."""
    layers = model.get_encoder_layers()
    if num_layers > len(layers):
        raise ValueError(f"--freeze-layers {num_layers}: the encoder has only {len(layers)} layers")
    model.set_encoder_frozen(False)
    _set_requires_grad(model.get_encoder_embeddings(), False)
    for layer in layers[:num_layers]:
        _set_requires_grad(layer, False)


def unfreeze_top(model, top: int | str) -> None:
    """Train the top `top` encoder layers ('all': the whole encoder, embeddings included); 0 trains heads only."""
    layers = model.get_encoder_layers()
    if top == "all":
        model.set_encoder_frozen(False)
    elif top == 0:
        model.set_encoder_frozen(True)
    else:
        freeze_bottom(model, max(len(layers) - int(top), 0))


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = trainable = 0
    for parameter in model.parameters():
        total += parameter.numel()
        trainable += parameter.numel() if parameter.requires_grad else 0
    return trainable, total


def validate_freeze_plan(strategy: str, freeze_layers: int, plan: dict[int, int | str], num_layers: int) -> None:
    """Refuse layer counts the encoder does not have, before any training step."""
    if strategy == "partial" and freeze_layers > num_layers:
        raise ValueError(f"--freeze-layers {freeze_layers}: the encoder has only {num_layers} layers")
    if strategy == "progressive":
        too_many = {epoch: n for epoch, n in plan.items() if n != "all" and n > num_layers}
        if too_many:
            epoch, n = next(iter(too_many.items()))
            raise ValueError(f"--unfreeze-schedule: epoch {epoch} unfreezes {n} layers but the encoder has only "
                             f"{num_layers} (use 'all' for the whole encoder)")


def current_epoch(state) -> int:
    """0-based index of the epoch under way: `state.epoch` is e at the start of epoch e and e + k/steps after k
    steps of it (also when a run resumes mid-epoch), so its floor is the epoch."""
    return math.floor(state.epoch or 0)


class PlainModesCallback(TrainerCallback):
    """Checkpoint files get the mode the umask gives (safetensors writes its temporary file 0600)."""

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            give_plain_modes(folder)


class AugmentationEpochCallback(TrainerCallback):
    """Tells the word augmenter which epoch is under way, so each epoch draws new variants, reproducibly."""

    def __init__(self, augmenter):
        self.augmenter = augmenter

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.augmenter.set_epoch(current_epoch(state))


class FreezingCallback(TrainerCallback):
    """Applies `none`, `full`, `partial` or `progressive` freezing at the start of training and of each epoch."""

    def __init__(self, strategy: str, freeze_layers: int = 0, plan: dict[int, int | str] | None = None):
        self.configure(strategy, freeze_layers, plan)

    def configure(self, strategy: str, freeze_layers: int = 0, plan: dict[int, int | str] | None = None) -> None:
        """Set the strategy (also between the trials of a hyperparameter search)."""
        self.strategy = strategy
        self.freeze_layers = freeze_layers
        self.plan = dict(sorted((plan or {}).items()))

    def target_for_epoch(self, epoch: int) -> int | str:
        """How many top layers train in `epoch` under the progressive plan (0 before the first entry)."""
        reached = [layers for start, layers in self.plan.items() if start <= epoch]
        return reached[-1] if reached else 0

    def apply(self, model, epoch: int) -> None:
        if self.strategy == "full":
            model.set_encoder_frozen(True)
        elif self.strategy == "partial":
            freeze_bottom(model, self.freeze_layers)
        elif self.strategy == "progressive":
            unfreeze_top(model, self.target_for_epoch(epoch))

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.apply(model, current_epoch(state))

    def on_epoch_begin(self, args, state, control, model=None, **kwargs):
        if self.strategy == "progressive":
            self.apply(model, current_epoch(state))


class TrainableParametersCallback(TrainerCallback):
    """Logs 'trainable parameters: X of Y' at the start and whenever freezing changes the count."""

    def __init__(self):
        self.last: int | None = None

    def _report(self, model, state) -> None:
        trainable, total = count_parameters(model)
        if trainable != self.last:
            self.last = trainable
            logger.info("epoch %.0f: trainable parameters %s of %s (%.1f%%)", state.epoch or 0, f"{trainable:,}",
                           f"{total:,}", 100.0 * trainable / max(total, 1))

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._report(model, state)

    def on_epoch_begin(self, args, state, control, model=None, **kwargs):
        self._report(model, state)
