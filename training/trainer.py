"""`MultiTaskTrainer`: the stock Trainer with per-task loss logging, weighted sampling and grouped learning rates.

The model itself combines the task losses (fixed weights or learned uncertainty weights, see
`modeling.losses.UncertaintyWeighting`), so it trains the same with or without this class; the Trainer adds what
belongs to a training loop: per-task loss curves, current task weights, a weighted sampler and the optimizer groups.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import Trainer

from modeling.losses import labelled_row_count
from modeling.task_schema import label_key
from training.model_card import write_model_card
from training.optimization import build_parameter_groups
from training.samplers import SeededLengthGroupedSampler, SeededWeightedSampler


class TaskLossMeter:
    """Running, label-count-weighted mean of each task's loss between two log calls.

    Sums stay tensors on the model's device and are read once per log call: converting them at every step would
    synchronise the accelerator with the host once per task and step.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.total: dict[str, torch.Tensor] = {}
        self.count: dict[str, torch.Tensor] = {}

    def update(self, task_losses: dict[str, torch.Tensor], inputs: dict[str, torch.Tensor]) -> None:
        """Add each task's loss, weighted by the rows of the batch that carry its labels."""
        for name, loss in task_losses.items():
            labels = inputs.get(label_key(name))
            if labels is None:
                continue
            n = labelled_row_count(labels).to(loss.device)
            weighted = loss.detach().float() * n
            self.total[name] = self.total[name] + weighted if name in self.total else weighted
            self.count[name] = self.count[name] + n if name in self.count else n

    def means(self, prefix: str) -> dict[str, float]:
        """`{prefix + task: mean loss}` over the tasks that saw labels (one host transfer for all of them)."""
        names = list(self.total)
        if not names:
            return {}
        totals = torch.stack([self.total[n] for n in names]).cpu().tolist()
        counts = torch.stack([self.count[n].float() for n in names]).cpu().tolist()
        return {f"{prefix}{n}": t / c for n, t, c in zip(names, totals, counts) if c}


class MultiTaskTrainer(Trainer):
    """Trainer for `MultiTaskModel`.

    Args:
        sample_weights: optional per-example weights of the training split (e.g. `PreparedData.sample_weights`);
            when given, batches are drawn with replacement in proportion to them.
        train_lengths: token counts of the training rows for `group_by_length` (from the data pipeline, so an
            on-the-fly transform is not run over the whole split to measure them).
        Everything else is passed to `transformers.Trainer`. `args` may be a `MultiTaskTrainingArguments`, whose
        `backbone_lr`, `head_lr` and `layer_lr_decay` shape the optimizer groups.
    """

    def __init__(self, *args, sample_weights: np.ndarray | None = None, train_lengths: np.ndarray | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.sample_weights = None if sample_weights is None else np.asarray(sample_weights, dtype=np.float64)
        self.train_lengths = None if train_lengths is None else np.asarray(train_lengths)
        self._train_meter, self._eval_meter = TaskLossMeter(), TaskLossMeter()
        if self.args.label_names is None:
            self.label_names = [label_key(name) for name in self.model.config.task_names]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Forward pass; the model combines its task losses, this records each one for the logs."""
        outputs = model(**inputs)
        if outputs.loss is None:
            raise ValueError(f"the batch carries no label column; expected some of {self.label_names}")
        meter = self._train_meter if model.training else self._eval_meter
        meter.update(outputs.task_losses, inputs)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds each task's mean training loss since the last log, and the current task weights."""
        if "loss" in logs:
            logs.update(self._train_meter.means("loss_"))
            weights = self.accelerator.unwrap_model(self.model).task_weights()
            logs.update({f"weight_{name}": value for name, value in weights.items()})
            self._train_meter.reset()
        super().log(logs, start_time)

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix="eval"):
        """The stock loop, plus `<prefix>_loss_<task>` for every task with labels in the split."""
        self._eval_meter.reset()
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        output.metrics.update(self._eval_meter.means(f"{metric_key_prefix}_loss_"))
        return output

    def _get_train_sampler(self, train_dataset=None):
        """Weighted sampling (with replacement) when weights were given, length grouping under `group_by_length`,
        the stock sampler otherwise (`random` is seeded per epoch by accelerate, `sequential` has no randomness).

        Our samplers reseed with `seed + epoch`, so every process draws the same sequence (accelerate hands each
        its own batches) and a resumed run draws the batches of the run it continues.
        """
        dataset = self.train_dataset if train_dataset is None else train_dataset
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        if self.sample_weights is not None:
            if len(self.sample_weights) != len(dataset):
                raise ValueError(f"{len(self.sample_weights)} sample weights for {len(dataset)} training rows")
            return SeededWeightedSampler(self.sample_weights, seed)
        if self.args.train_sampling_strategy == "group_by_length":
            lengths = self.train_lengths if self.train_lengths is not None else [len(x) for x in dataset["input_ids"]]
            if len(lengths) != len(dataset):
                raise ValueError(f"{len(lengths)} lengths for {len(dataset)} training rows")
            batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return SeededLengthGroupedSampler(lengths, batch, seed)
        return super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset):
        """Evaluation in dataset order (the stock `group_by_length` would permute predictions); with several
        processes, none: accelerate then hands each process a contiguous shard."""
        if eval_dataset is None or self.args.world_size > 1:
            return None
        return torch.utils.data.SequentialSampler(eval_dataset)

    def create_optimizer(self, model=None):
        """AdamW (or `args.optim`) over all parameters, grouped by learning rate and weight decay."""
        if self.optimizer is not None:
            return self.optimizer
        opt_model = self.model if model is None else model
        groups = build_parameter_groups(
            opt_model,
            decay_names=set(self.get_decay_parameter_names(opt_model)),
            base_lr=self.args.learning_rate,
            weight_decay=self.args.weight_decay,
            backbone_lr=getattr(self.args, "backbone_lr", None),
            head_lr=getattr(self.args, "head_lr", None),
            layer_lr_decay=getattr(self.args, "layer_lr_decay", 1.0),
        )
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        optimizer_kwargs.pop("lr", None)
        self.optimizer = optimizer_cls(groups, lr=self.args.learning_rate, **optimizer_kwargs)
        return self.optimizer

    def create_model_card(self, report: dict | None = None, data_description: dict | None = None,
                          folder: str | Path | None = None, **kwargs):
        """Our card (tasks, labels, thresholds, metrics, arguments, usage) instead of the stock one.

        `push_to_hub` calls this too, so the card on the Hub is the same as the saved one.
        """
        if not self.is_world_process_zero():
            return
        card_args = {"model_id": self.hub_model_id or Path(self.args.output_dir).name,
                     "training_args": self.args, "data": data_description}
        if report is not None:
            card_args["metrics"] = report
        write_model_card(folder or self.args.output_dir, self.model.config, **card_args)
