"""Task balancing over time: loss-driven weights, curricula and a dropout schedule, applied by one callback.

- `inverse_variance`: every interval, each task's weight is inverse to the variance of its recent training losses
  (`modeling.losses.inverse_variance_weights`, normalised to mean 1): a task whose loss jumps around counts less.
- `dwa`: Dynamic Weight Average (Liu, Johns & Davison 2019): w_t = T * softmax(r_t / temperature) with r_t the ratio
  of task t's mean loss over the last interval to the one before; a task whose loss falls slowly counts more.
- a curriculum (`--task-weight-schedule TASK=P:W,P:W`) multiplies a task's weight by a piecewise-linear function of
  training progress P (a fraction of the steps, or epochs with an `ep` suffix), e.g. `vad=0:0,0.5:1`;
- `--dropout-schedule P:D,P:D` sets the heads' dropout the same way (e.g. `0:0.1,0.5:0.2,1:0.15`).

Weights multiply each task's fixed weight (and compose with learned uncertainty weights). The callback's state is
saved with every checkpoint, so a resumed run continues the same schedule.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from torch import nn
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from modeling.losses import inverse_variance_weights
from training.arguments import ArgumentError

LOSS_WEIGHTINGS = ("fixed", "uncertainty", "inverse_variance", "dwa")
DYNAMIC = ("inverse_variance", "dwa")
_POINT = re.compile(r"^\s*([0-9.eE+-]+)(ep)?\s*:\s*([0-9.eE+-]+)\s*$")


@dataclass(frozen=True)
class Schedule:
    """A piecewise-linear function of training progress: flat before the first and after the last breakpoint."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]
    epochs: bool  # x in epochs (else: fraction of all steps)

    def at(self, fraction: float, epoch: float) -> float:
        return float(np.interp(epoch if self.epochs else fraction, self.xs, self.ys))


def parse_schedule(text: str, flag: str, upper: float | None = None) -> Schedule:
    """`0:0,0.5:1` (fractions of the steps) or `0ep:0,2ep:1` (epochs); x strictly increasing, 0 <= y (< upper)."""
    points, units = [], set()
    for item in text.split(","):
        match = _POINT.match(item)
        if match is None:
            raise ArgumentError(f"{flag} {text!r}: {item!r} is not PROGRESS:VALUE (e.g. 0:0,0.5:1 or 0ep:0,2ep:1)")
        x, unit, y = float(match.group(1)), bool(match.group(2)), float(match.group(3))
        if not (math.isfinite(x) and math.isfinite(y)) or x < 0 or y < 0 or (upper is not None and y >= upper):
            raise ArgumentError(f"{flag} {text!r}: {item!r} needs progress >= 0 and a value in "
                                f"[0, {upper if upper is not None else 'inf'})")
        points.append((x, y))
        units.add(unit)
    xs = [x for x, _ in points]
    if len(units) > 1:
        raise ArgumentError(f"{flag} {text!r}: mixes fractions of the steps and epochs; use one unit")
    if any(b <= a for a, b in zip(xs, xs[1:])):
        raise ArgumentError(f"{flag} {text!r}: progress must increase from one breakpoint to the next")
    epochs = units.pop()
    if not epochs and xs[-1] > 1:
        raise ArgumentError(f"{flag} {text!r}: fractions of the steps go from 0 to 1 (write 2ep for epochs)")
    return Schedule(tuple(xs), tuple(y for _, y in points), epochs)


def parse_task_schedules(items: list[str], task_names: list[str] | None = None) -> dict[str, Schedule]:
    """`TASK=P:W,...` flags -> {task: Schedule}; an unknown task (when the names are known) is an error."""
    schedules = {}
    for item in items:
        task, sep, text = item.partition("=")
        if not sep or not task.strip():
            raise ArgumentError(f"--task-weight-schedule {item!r}: expected TASK=PROGRESS:WEIGHT,... "
                                "(e.g. vad=0:0,0.5:1)")
        if task_names is not None and task.strip() not in task_names:
            raise ArgumentError(f"--task-weight-schedule {item!r}: unknown task {task.strip()!r}; tasks are "
                                f"{task_names}")
        schedules[task.strip()] = parse_schedule(text, "--task-weight-schedule")
    return schedules


def dwa_weights(history: dict[str, list[float]], temperature: float) -> dict[str, float]:
    """Dynamic Weight Average from each task's last two interval means; 1 each until two intervals exist."""
    if not history or any(len(values) < 2 or values[-2] <= 0 for values in history.values()):
        return {name: 1.0 for name in history}
    ratios = np.array([values[-1] / values[-2] for values in history.values()]) / temperature
    weights = len(history) * np.exp(ratios - ratios.max()) / np.exp(ratios - ratios.max()).sum()
    return dict(zip(history, weights.tolist()))


def head_dropouts(model) -> list[nn.Dropout]:
    return [m for m in model.heads.modules() if isinstance(m, nn.Dropout)]


class TaskBalancingCallback(TrainerCallback, ExportableState):
    """Sets `model.weight_multipliers` (and the heads' dropout) before every step; its state is checkpointed."""

    def __init__(self, strategy: str = "fixed", interval: int = 0, window: int = 20, temperature: float = 2.0,
                 schedules: list[str] | None = None, dropout_schedule: str | None = None):
        self.strategy, self.interval, self.window, self.temperature = strategy, interval, window, temperature
        self.schedules, self.dropout_schedule = list(schedules or []), dropout_schedule
        self._parsed = parse_task_schedules(self.schedules)
        self._dropout = parse_schedule(dropout_schedule, "--dropout-schedule", 1.0) if dropout_schedule else None
        self.balance: dict[str, float] = {}
        self.means: dict[str, list[float]] = {}  # per task: mean logged loss of each finished interval
        self.last_update = 0

    @classmethod
    def from_args(cls, loss_weighting: str, args) -> TaskBalancingCallback:
        """The callback for `--loss-weighting` and the training arguments' interval, window, temperature and
        schedules (`uncertainty` is learned by the model, so it balances as `fixed` here)."""
        return cls(loss_weighting if loss_weighting in DYNAMIC else "fixed", args.loss_weighting_interval,
                   args.loss_weighting_window, args.dwa_temperature, args.task_weight_schedule, args.dropout_schedule)

    def configure(self, loss_weighting: str) -> None:
        """A new strategy and a fresh history (between the trials of a hyperparameter search)."""
        self.strategy = loss_weighting if loss_weighting in DYNAMIC else "fixed"
        self.balance, self.means, self.last_update = {}, {}, 0

    def state(self) -> dict:
        return {"args": {"strategy": self.strategy, "interval": self.interval, "window": self.window,
                         "temperature": self.temperature, "schedules": self.schedules,
                         "dropout_schedule": self.dropout_schedule},
                "attributes": {"balance": self.balance, "means": self.means, "last_update": self.last_update}}

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        fraction = state.global_step / max(state.max_steps, 1)
        epoch = state.epoch or 0.0
        model.weight_multipliers = {
            name: self.balance.get(name, 1.0) * (self._parsed[name].at(fraction, epoch) if name in self._parsed
                                                 else 1.0) for name in model.config.task_names}
        if self._dropout is not None:
            for dropout in head_dropouts(model):
                dropout.p = self._dropout.at(fraction, epoch)

    def on_log(self, args, state, control, **kwargs):
        if self.strategy in DYNAMIC and self.interval and state.global_step - self.last_update >= self.interval:
            self.update(state)

    def on_evaluate(self, args, state, control, **kwargs):
        if self.strategy in DYNAMIC and not self.interval and state.global_step > self.last_update:
            self.update(state)

    def update(self, state) -> None:
        """New weights from the task losses logged since the last update."""
        recent = [entry for entry in state.log_history if entry.get("step", 0) > self.last_update]
        names = sorted({k[len("loss_"):] for entry in recent for k in entry if k.startswith("loss_")})
        for name in names:
            values = [entry[f"loss_{name}"] for entry in recent if f"loss_{name}" in entry]
            self.means.setdefault(name, []).append(float(np.mean(values)))
        if self.strategy == "dwa":
            self.balance = dwa_weights(self.means, self.temperature)
        else:
            history = {name: [e[f"loss_{name}"] for e in state.log_history if f"loss_{name}" in e] for name in names}
            self.balance = inverse_variance_weights(history, self.window)
        self.last_update = state.global_step


def balancing_callback(loss_weighting: str, args) -> TaskBalancingCallback | None:
    """The callback a run needs: a dynamic strategy, a curriculum or a dropout schedule (None when none is set)."""
    if loss_weighting not in DYNAMIC and not args.task_weight_schedule and not args.dropout_schedule:
        return None
    return TaskBalancingCallback.from_args(loss_weighting, args)
