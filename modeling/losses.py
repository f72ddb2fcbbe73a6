"""Masked task losses, class-weight helpers and task-weighting schemes.

Conventions shared by every loss here:
- missing labels are masked out before any arithmetic touches them (ignore index -100 for classes and for
  multilabel / binary targets, NaN for regression targets), so NaN never reaches a value or a gradient;
- the mean runs over the labelled entries only; a batch without any label gives `0 * logits.sum()`, a zero that is
  still part of the autograd graph, with finite (zero) gradients;
- logits are promoted to float32, so the losses are safe under fp16 / bf16 autocast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .task_schema import IGNORE_INDEX

_TINY = 1e-12


def _vector(values: Sequence[float] | torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    if values is None:
        return None
    return torch.as_tensor(values, dtype=torch.float32, device=like.device)


def _masked_mean(per_entry: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum(w * x) / sum(w); 0 (still in the graph) when every weight is 0. `per_entry` must be finite."""
    return (per_entry * weights).sum() / weights.sum().clamp_min(_TINY)


def _focal_factor(prob: torch.Tensor, gamma: float) -> torch.Tensor:
    """(1 - p) ** gamma with a clamp that keeps the gradient finite at p = 1; exactly 1 when gamma = 0."""
    if gamma == 0:
        return torch.ones_like(prob)
    return (1.0 - prob).clamp_min(_TINY).pow(gamma)


def _softmax_loss(logits, targets, class_weights, label_smoothing, gamma, alpha, ignore_index):
    """Shared body of smoothed / weighted / focal cross-entropy: -sum_c q_c * a_c * (1 - p_c)^gamma * log p_c."""
    logits = logits.float()  # (B, C)
    num_classes = logits.shape[-1]
    valid = targets != ignore_index  # (B,)
    safe_targets = torch.where(valid, targets, torch.zeros_like(targets))  # (B,)
    log_probs = F.log_softmax(logits, dim=-1)  # (B, C)
    one_hot = F.one_hot(safe_targets, num_classes).float()  # (B, C)
    smoothed = one_hot * (1.0 - label_smoothing) + label_smoothing / num_classes  # (B, C)
    per_class = -smoothed * log_probs * _focal_factor(log_probs.exp(), gamma)  # (B, C)
    if alpha is not None:
        per_class = per_class * _vector(alpha, logits)
    normaliser = valid.float()  # (B,)
    if class_weights is not None:
        cw = _vector(class_weights, logits)  # (C,)
        per_class = per_class * cw
        normaliser = normaliser * cw[safe_targets]  # torch's weighted mean: divide by the true classes' weights
    per_sample = per_class.sum(dim=-1) * valid.float()  # (B,)
    return per_sample.sum() / normaliser.sum().clamp_min(_TINY)


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, class_weights: Sequence[float] | None = None,
                         label_smoothing: float = 0.0, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Cross-entropy with optional class weights and label smoothing (our own, so it works for every task).

    Matches `F.cross_entropy(logits, targets, weight, ignore_index, label_smoothing)`: with smoothing eps the
    target is (1 - eps) * one_hot + eps / C; with class weights the mean is normalised by the weights of the
    labelled rows' true classes.
    """
    return _softmax_loss(logits, targets, class_weights, label_smoothing, 0.0, None, ignore_index)


def softmax_focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0,
                       alpha: Sequence[float] | None = None, class_weights: Sequence[float] | None = None,
                       label_smoothing: float = 0.0, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Multiclass focal loss (Lin et al. 2017): -alpha_c (1 - p_c)^gamma log p_c, summed over the (smoothed) target.

    `alpha` holds one weight per class; gamma = 0 without alpha equals `masked_cross_entropy` exactly.
    """
    return _softmax_loss(logits, targets, class_weights, label_smoothing, gamma, alpha, ignore_index)


def _sigmoid_loss(logits, targets, pos_weight, label_smoothing, gamma, alpha):
    """Shared body of BCE / sigmoid focal loss on entries whose target is not -100 / NaN."""
    logits = logits.float()
    targets = targets.to(device=logits.device, dtype=torch.float32)
    valid = (targets != IGNORE_INDEX) & ~torch.isnan(targets)
    t = torch.where(valid, targets, torch.zeros_like(targets))
    t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing  # smoothed towards 0.5
    pos_term = t * F.softplus(-logits)  # -t log sigmoid(x)
    if pos_weight is not None:
        pos_term = pos_term * _vector(pos_weight, logits)
    per_entry = pos_term + (1.0 - t) * F.softplus(logits)  # -(1 - t) log(1 - sigmoid(x))
    if gamma != 0 or alpha is not None:
        prob = torch.sigmoid(logits)
        p_true = prob * t + (1.0 - prob) * (1.0 - t)
        per_entry = per_entry * _focal_factor(p_true, gamma)
        if alpha is not None:
            a = _vector(alpha, logits)
            per_entry = per_entry * (a * t + (1.0 - a) * (1.0 - t))
    return _masked_mean(per_entry, valid.float())


def masked_bce_with_logits(logits: torch.Tensor, targets: torch.Tensor, pos_weight: Sequence[float] | None = None,
                           label_smoothing: float = 0.0) -> torch.Tensor:
    """Binary cross-entropy on logits for multilabel (B, L) or binary (B,) targets; -100 or NaN entries are skipped.

    Matches `F.binary_cross_entropy_with_logits(..., pos_weight)` on the labelled entries. Label smoothing eps
    moves targets to t (1 - eps) + eps / 2.
    """
    return _sigmoid_loss(logits, targets, pos_weight, label_smoothing, 0.0, None)


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0,
                       alpha: Sequence[float] | None = None, pos_weight: Sequence[float] | None = None,
                       label_smoothing: float = 0.0) -> torch.Tensor:
    """Sigmoid focal loss: BCE * (1 - p_t)^gamma * alpha_t, alpha_t = alpha for positives, 1 - alpha for negatives.

    gamma = 0 without alpha equals `masked_bce_with_logits` exactly.
    """
    return _sigmoid_loss(logits, targets, pos_weight, label_smoothing, gamma, alpha)


def _regression_mask(predictions: torch.Tensor, targets: torch.Tensor):
    targets = targets.to(device=predictions.device, dtype=torch.float32)
    valid = ~torch.isnan(targets)
    safe = torch.where(valid, targets, torch.zeros_like(targets))  # NaN replaced before any arithmetic
    return valid, safe


def masked_mse(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the non-NaN targets."""
    valid, safe = _regression_mask(predictions, targets)
    diff = torch.where(valid, predictions.float() - safe, torch.zeros_like(safe))
    return _masked_mean(diff.pow(2), valid.float())


def masked_huber(predictions: torch.Tensor, targets: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Huber loss (quadratic below `delta`, linear above) over the non-NaN targets."""
    valid, safe = _regression_mask(predictions, targets)
    diff = torch.where(valid, predictions.float() - safe, torch.zeros_like(safe))
    per_entry = F.huber_loss(diff, torch.zeros_like(diff), reduction="none", delta=delta)
    return _masked_mean(per_entry, valid.float())


def masked_gaussian_nll(predictions: torch.Tensor, log_variance: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Gaussian negative log-likelihood with a predicted variance: 0.5 * (log var + (y - mu)^2 / var), constant
    0.5 log(2 pi) dropped, over the non-NaN targets."""
    valid, safe = _regression_mask(predictions, targets)
    diff = torch.where(valid, predictions.float() - safe, torch.zeros_like(safe))
    per_entry = 0.5 * (log_variance.float() + diff.pow(2) * torch.exp(-log_variance.float()))
    return _masked_mean(per_entry, valid.float())


def class_weights_from_counts(counts: Sequence[float], smoothing: float = 0.0) -> list[float]:
    """Balanced inverse-frequency class weights: w_c = (N + C s) / (C (n_c + s)).

    `smoothing` s adds s pseudo-examples to every class, which tames the weight of rare classes and makes classes
    with no example usable (s = 0 gives scikit-learn's "balanced" weights; a zero count then is an error).
    """
    counts = [float(c) for c in counts]
    if len(counts) < 2 or any(not math.isfinite(c) or c < 0 for c in counts):
        raise ValueError(f"class counts: expected >= 2 non-negative counts, got {counts}")
    if smoothing < 0:
        raise ValueError(f"smoothing: must be >= 0, got {smoothing}")
    if smoothing == 0 and min(counts) == 0:
        raise ValueError(f"class counts: a class has no example ({counts}); pass smoothing > 0")
    total, num_classes = sum(counts) + smoothing * len(counts), len(counts)
    return [total / (num_classes * (c + smoothing)) for c in counts]


def pos_weight_from_counts(positives: Sequence[float], totals: Sequence[float], smoothing: float = 1.0) -> list[float]:
    """BCE `pos_weight` per label: negatives / positives, with `smoothing` pseudo-counts added to both."""
    if len(positives) != len(totals):
        raise ValueError(f"pos_weight: got {len(positives)} positive counts for {len(totals)} totals")
    if smoothing < 0:
        raise ValueError(f"smoothing: must be >= 0, got {smoothing}")
    weights = []
    for pos, tot in zip(positives, totals):
        if pos < 0 or tot < pos or (smoothing == 0 and pos == 0):
            raise ValueError(f"pos_weight: invalid counts positives={pos}, total={tot} (pass smoothing > 0)")
        weights.append((tot - pos + smoothing) / (pos + smoothing))
    return weights


def compute_task_loss(task: dict, output: torch.Tensor, labels: torch.Tensor,
                      log_variance: torch.Tensor | None = None) -> torch.Tensor:
    """Loss of one task, configured by its completed task dict (see `MultiTaskConfig`).

    `output` is the raw logits for classification and the standardised prediction for regression; regression
    `labels` come in the user's units and are standardised here with the task's target_mean / target_std.
    """
    kind, loss = task["type"], task["loss"]
    smoothing = task["label_smoothing"]
    if kind == "multiclass":
        if loss == "focal":
            return softmax_focal_loss(output, labels, task["focal_gamma"], task["focal_alpha"],
                                      task["class_weights"], smoothing)
        return masked_cross_entropy(output, labels, task["class_weights"], smoothing)
    if kind in ("multilabel", "binary"):
        if loss == "focal":
            return sigmoid_focal_loss(output, labels, task["focal_gamma"], task["focal_alpha"], task["pos_weight"],
                                      smoothing)
        return masked_bce_with_logits(output, labels, task["pos_weight"], smoothing)
    mean, std = _vector(task["target_mean"], output), _vector(task["target_std"], output)
    standardised = (labels.to(device=output.device, dtype=torch.float32) - mean) / std  # NaN stays NaN (masked)
    if loss == "huber":
        return masked_huber(output, standardised, task["huber_delta"])
    if loss == "gaussian_nll":
        if log_variance is None:
            raise ValueError(f"task {task['name']!r}: loss 'gaussian_nll' needs the predicted log-variance")
        return masked_gaussian_nll(output, log_variance, standardised)
    return masked_mse(output, standardised)


def labelled_row_count(labels: torch.Tensor) -> torch.Tensor:
    """Rows of a label batch that carry at least one label (not -100, not NaN), as a 0-d tensor on its device.

    A tensor, not an int: reading it on the host would synchronise an accelerator at every step.
    """
    labels = labels.float()
    present = (labels != IGNORE_INDEX) & ~torch.isnan(labels)
    return present.reshape(labels.shape[0], -1).any(dim=1).sum()


class UncertaintyWeighting(nn.Module):
    r"""Learned task weighting after Kendall, Gal & Cipolla (2018), one log-variance s_t = log sigma_t^2 per task.

    total = sum_t [ c_t * exp(-s_t) * w_t * L_t + s_t / 2 ]

    with c_t = 1 for classification tasks (softmax / sigmoid likelihood with temperature sigma^2) and c_t = 1/2 for
    regression tasks (Gaussian likelihood), w_t the task's fixed `weight`. A task without any label in the batch
    contributes neither its loss nor its regulariser s_t / 2 (only `0 * s_t`, so the graph stays connected).
    The parameters start at 0 (all weights c_t * w_t) and live inside the model, so the optimizer trains them
    and checkpoints keep them.
    """

    def __init__(self, task_names: Sequence[str], task_types: Sequence[str]):
        super().__init__()
        self.task_names = list(task_names)
        self.scales = [0.5 if kind == "regression" else 1.0 for kind in task_types]
        self.log_variances = nn.Parameter(torch.zeros(len(self.task_names)))  # (T,)

    def log_variance(self, name: str) -> torch.Tensor:
        return self.log_variances[self.task_names.index(name)]

    def forward(self, task_losses: dict[str, torch.Tensor], fixed_weights: dict[str, float] | None = None,
                present: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """`present[t]`: a bool tensor, False when task t has no label in the batch (its loss is a zero)."""
        total = self.log_variances.sum() * 0.0
        for name, loss in task_losses.items():
            index = self.task_names.index(name)
            s = self.log_variances[index]
            weight = 1.0 if fixed_weights is None else fixed_weights.get(name, 1.0)
            regulariser = 0.5 * s
            if present is not None and name in present:
                regulariser = regulariser * present[name].to(s.dtype)  # no host sync: multiply, do not branch
            total = total + self.scales[index] * torch.exp(-s) * weight * loss + regulariser
        return total

    def effective_weights(self, fixed_weights: dict[str, float] | None = None) -> dict[str, float]:
        """c_t * w_t * exp(-s_t) per task, the factor in front of each task loss."""
        values = torch.exp(-self.log_variances.detach().float()).tolist()
        return {name: self.scales[i] * values[i] * (1.0 if fixed_weights is None else fixed_weights.get(name, 1.0))
                for i, name in enumerate(self.task_names)}


def inverse_variance_weights(loss_history: dict[str, list[float]], window: int | None = None) -> dict[str, float]:
    """Task weights inverse to the variance of each task's recent losses, normalised to mean 1.

    A task whose loss jumps around gets a smaller weight. Non-finite values are ignored; the variance gets a floor
    of 1% of the mean variance (plus 1e-12), so a constant history cannot take all the weight. With fewer than
    two values for some task, or all histories constant, every task gets weight 1.
    """
    histories = {}
    for name, values in loss_history.items():
        finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        histories[name] = finite[-window:] if window else finite
    if not histories:
        return {}
    if any(len(values) < 2 for values in histories.values()):
        return {name: 1.0 for name in histories}
    variances = {}
    for name, values in histories.items():
        mean = sum(values) / len(values)
        variances[name] = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    floor = 1e-12 + 0.01 * sum(variances.values()) / len(variances)
    inverse = {name: 1.0 / max(var, floor) for name, var in variances.items()}
    scale = len(inverse) / sum(inverse.values())
    return {name: value * scale for name, value in inverse.items()}
