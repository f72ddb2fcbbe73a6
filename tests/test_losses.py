"""Losses: agreement with torch, hand-computed values, masking, all-missing batches, task weighting."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from modeling.losses import (
    UncertaintyWeighting,
    class_weights_from_counts,
    compute_task_loss,
    inverse_variance_weights,
    labelled_row_count,
    masked_bce_with_logits,
    masked_cross_entropy,
    masked_gaussian_nll,
    masked_huber,
    masked_mse,
    pos_weight_from_counts,
    sigmoid_focal_loss,
    softmax_focal_loss,
)

LN2, LN3, LN4 = math.log(2), math.log(3), math.log(4)


def test_cross_entropy_matches_torch_with_weights_smoothing_and_ignore():
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 4), torch.tensor([0, 3, -100, 2, 1, -100])
    weights = [0.5, 2.0, 1.0, 3.0]
    ours = masked_cross_entropy(logits, targets, class_weights=weights, label_smoothing=0.1)
    ref = F.cross_entropy(logits, targets, weight=torch.tensor(weights), label_smoothing=0.1)
    assert torch.allclose(ours, ref, atol=1e-6)


def test_cross_entropy_class_weights_hand_computed():
    # row 1: p = [0.5, 0.5], true 0 -> ln 2 (weight 1); row 2: p = [0.75, 0.25], true 1 -> ln 4 (weight 3)
    logits, targets = torch.tensor([[0.0, 0.0], [LN3, 0.0]]), torch.tensor([0, 1])
    loss = masked_cross_entropy(logits, targets, class_weights=[1.0, 3.0])
    assert loss.item() == pytest.approx((1 * LN2 + 3 * LN4) / 4, abs=1e-6)


def test_cross_entropy_label_smoothing_hand_computed():
    # p = [0.75, 0.25], true 0, eps 0.2 -> q = [0.9, 0.1]
    loss = masked_cross_entropy(torch.tensor([[LN3, 0.0]]), torch.tensor([0]), label_smoothing=0.2)
    assert loss.item() == pytest.approx(-0.9 * math.log(0.75) - 0.1 * math.log(0.25), abs=1e-6)


def test_bce_label_smoothing_and_pos_weight_hand_computed():
    # sigmoid(ln 3) = 0.75; eps 0.2 moves target 1 to 0.9
    smoothed = masked_bce_with_logits(torch.tensor([LN3]), torch.tensor([1.0]), label_smoothing=0.2)
    assert smoothed.item() == pytest.approx(-0.9 * math.log(0.75) - 0.1 * math.log(0.25), abs=1e-6)
    # positive entry weighted 3 * ln 2, negative entry ln 2, masked entry skipped -> mean 2 ln 2
    logits, targets = torch.zeros(1, 3), torch.tensor([[1.0, 0.0, -100.0]])
    weighted = masked_bce_with_logits(logits, targets, pos_weight=[3.0, 3.0, 3.0])
    assert weighted.item() == pytest.approx(2 * LN2, abs=1e-6)


def test_bce_matches_torch_pos_weight():
    torch.manual_seed(1)
    logits, targets = torch.randn(5, 3), torch.randint(0, 2, (5, 3)).float()
    pw = [0.5, 2.0, 4.0]
    ref = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=torch.tensor(pw))
    assert torch.allclose(masked_bce_with_logits(logits, targets, pos_weight=pw), ref, atol=1e-6)


def test_focal_gamma_zero_equals_ce_and_bce_exactly():
    torch.manual_seed(2)
    logits, targets = torch.randn(8, 5), torch.tensor([0, 1, 2, 3, 4, -100, 1, 2])
    ce = masked_cross_entropy(logits, targets, class_weights=[1, 2, 3, 4, 5], label_smoothing=0.1)
    focal = softmax_focal_loss(logits, targets, gamma=0.0, class_weights=[1, 2, 3, 4, 5], label_smoothing=0.1)
    assert torch.equal(ce, focal)
    assert torch.allclose(softmax_focal_loss(logits, targets, gamma=0.0), F.cross_entropy(logits, targets), atol=1e-6)
    ml_logits, ml_targets = torch.randn(4, 3), torch.tensor([[1.0, 0, -100], [0, 0, 1], [1, 1, 1], [0, -100, 0]])
    bce = masked_bce_with_logits(ml_logits, ml_targets, pos_weight=[2.0, 1.0, 0.5])
    assert torch.equal(bce, sigmoid_focal_loss(ml_logits, ml_targets, gamma=0.0, pos_weight=[2.0, 1.0, 0.5]))


def test_focal_hand_computed_and_downweights_easy_examples():
    softmax = softmax_focal_loss(torch.tensor([[LN3, 0.0]]), torch.tensor([0]), gamma=2.0)
    assert softmax.item() == pytest.approx(-(0.25**2) * math.log(0.75), abs=1e-6)
    sigmoid = sigmoid_focal_loss(torch.tensor([LN3]), torch.tensor([1.0]), gamma=2.0, alpha=[0.25])
    assert sigmoid.item() == pytest.approx(0.25 * 0.25**2 * -math.log(0.75), abs=1e-6)
    assert softmax.item() < masked_cross_entropy(torch.tensor([[LN3, 0.0]]), torch.tensor([0])).item()


def test_masked_rows_are_ignored():
    torch.manual_seed(3)
    logits = torch.randn(4, 3)
    masked = masked_cross_entropy(logits, torch.tensor([2, -100, 0, -100]))
    assert torch.allclose(masked, masked_cross_entropy(logits[[0, 2]], torch.tensor([2, 0])))
    preds, targets = torch.randn(3, 2), torch.tensor([[1.0, float("nan")], [float("nan"), float("nan")], [0.5, 2.0]])
    expected = ((preds[0, 0] - 1.0) ** 2 + (preds[2, 0] - 0.5) ** 2 + (preds[2, 1] - 2.0) ** 2) / 3
    assert torch.allclose(masked_mse(preds, targets), expected)


def test_huber_and_gaussian_nll_values():
    preds, targets = torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.5, 3.0, float("nan")])
    # 0.5 * 0.5^2 = 0.125 (quadratic zone), 3 - 0.5 = 2.5 (linear zone, delta 1)
    assert masked_huber(preds, targets, delta=1.0).item() == pytest.approx((0.125 + 2.5) / 2)
    torch.manual_seed(4)
    mu, log_var, y = torch.randn(5, 2), torch.randn(5, 2), torch.randn(5, 2)
    ref = F.gaussian_nll_loss(mu, y, log_var.exp(), eps=1e-12)
    assert torch.allclose(masked_gaussian_nll(mu, log_var, y), ref, atol=1e-6)


@pytest.mark.parametrize("case", ["ce", "focal", "bce", "sigmoid_focal", "mse", "huber", "nll"])
def test_all_missing_batch_gives_graph_connected_zero_with_finite_grads(case):
    logits = torch.randn(3, 4, requires_grad=True)
    missing_cls, missing_bin = torch.full((3,), -100), torch.full((3, 4), -100.0)
    missing_reg = torch.full((3, 4), math.nan)
    loss = {
        "ce": lambda: masked_cross_entropy(logits, missing_cls, class_weights=[1, 2, 3, 4], label_smoothing=0.1),
        "focal": lambda: softmax_focal_loss(logits, missing_cls, gamma=2.0, alpha=[0.1, 0.2, 0.3, 0.4]),
        "bce": lambda: masked_bce_with_logits(logits, missing_bin, pos_weight=[2.0] * 4, label_smoothing=0.1),
        "sigmoid_focal": lambda: sigmoid_focal_loss(logits, missing_bin, gamma=2.0, alpha=[0.25] * 4),
        "mse": lambda: masked_mse(logits, missing_reg),
        "huber": lambda: masked_huber(logits, missing_reg),
        "nll": lambda: masked_gaussian_nll(logits, logits * 0.5, missing_reg),
    }[case]()
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad == 0).all()


def test_nan_targets_never_reach_gradients():
    preds = torch.randn(4, 2, requires_grad=True)
    targets = torch.tensor([[1.0, math.nan], [math.nan, 2.0], [0.0, 0.0], [math.nan, math.nan]])
    masked_gaussian_nll(preds, preds * 0.1, targets).backward()
    assert torch.isfinite(preds.grad).all()
    assert (preds.grad[3] == 0).all() and preds.grad[0, 0] != 0


def test_compute_task_loss_standardises_regression_targets():
    task = {"name": "vad", "type": "regression", "labels": ["V", "A"], "loss": "mse", "label_smoothing": 0.0,
            "target_mean": [3.0, 1.0], "target_std": [2.0, 0.5], "huber_delta": 1.0}
    z = torch.tensor([[0.5, -1.0]])
    user_targets = torch.tensor([[5.0, 1.0]])  # standardised: [1.0, 0.0]
    loss = compute_task_loss(task, z, user_targets)
    assert loss.item() == pytest.approx(((0.5 - 1.0) ** 2 + (-1.0) ** 2) / 2)
    assert labelled_row_count(torch.tensor([[1.0, math.nan], [math.nan, math.nan]])).item() == 1
    assert labelled_row_count(torch.tensor([2, -100, 0])).item() == 2  # multiclass rows


def test_class_weights_from_counts_hand_computed():
    assert class_weights_from_counts([10, 30, 60]) == pytest.approx([10 / 3, 10 / 9, 5 / 9])
    assert class_weights_from_counts([10, 30, 60], smoothing=10) == pytest.approx([13 / 6, 13 / 12, 13 / 21])
    assert class_weights_from_counts([0, 4], smoothing=1) == pytest.approx([3.0, 0.6])
    with pytest.raises(ValueError, match="smoothing > 0"):
        class_weights_from_counts([0, 5])
    assert pos_weight_from_counts([10, 0], [100, 100]) == pytest.approx([91 / 11, 101.0])


def test_uncertainty_weighting_form_and_absent_task():
    weighting = UncertaintyWeighting(["emo", "vad", "gone"], ["multiclass", "regression", "binary"])
    with torch.no_grad():
        weighting.log_variances.copy_(torch.tensor([0.5, -0.2, 0.3]))
    losses = {"emo": torch.tensor(2.0), "vad": torch.tensor(4.0), "gone": torch.tensor(0.0)}
    present = {"emo": torch.tensor(True), "vad": torch.tensor(True), "gone": torch.tensor(False)}
    total = weighting(losses, {"emo": 1.0, "vad": 2.0, "gone": 1.0}, present=present)
    expected = math.exp(-0.5) * 2.0 + 0.25 + 0.5 * math.exp(0.2) * 2.0 * 4.0 - 0.1
    assert total.item() == pytest.approx(expected, abs=1e-6)
    total.backward()
    grad = weighting.log_variances.grad
    assert grad[0].item() == pytest.approx(-math.exp(-0.5) * 2.0 + 0.5, abs=1e-6)
    assert grad[2].item() == 0.0
    weights = weighting.effective_weights({"emo": 1.0, "vad": 2.0, "gone": 1.0})
    assert weights["vad"] == pytest.approx(0.5 * math.exp(0.2) * 2.0)


def test_inverse_variance_weights():
    weights = inverse_variance_weights({"a": [1.0, 3.0], "b": [1.0, 2.0]})  # variances 2 and 0.5
    assert weights == pytest.approx({"a": 0.4, "b": 1.6})
    assert inverse_variance_weights({"a": [1.0, 1.0, 1.0], "b": [2.0, 2.0]}) == {"a": 1.0, "b": 1.0}
    assert inverse_variance_weights({"a": [1.0], "b": [1.0, 5.0]}) == {"a": 1.0, "b": 1.0}
    assert inverse_variance_weights({}) == {}
    mixed = inverse_variance_weights({"flat": [0.7, 0.7, 0.7], "noisy": [1.0, 2.0, math.nan, 0.0]})
    assert all(math.isfinite(w) for w in mixed.values()) and sum(mixed.values()) / 2 == pytest.approx(1.0)
    assert mixed["flat"] > mixed["noisy"]
    assert inverse_variance_weights({"a": [5.0, 1.0, 3.0], "b": [1.0, 3.0, 5.0]}, window=2)["a"] == pytest.approx(1.0)
