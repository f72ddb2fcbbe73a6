"""Pooling: the name table, mask awareness (padding never leaks), no in-place writes, half precision."""

from __future__ import annotations

import pytest
import torch

from modeling.configuration_multitask import POOLING_OPTIONS
from modeling.pooling import POOLING_CLASSES, AttentionPooling, build_pooling

H = 8


def test_table_matches_config_options_and_unknown_name_lists_them():
    assert tuple(POOLING_CLASSES) == POOLING_OPTIONS
    with pytest.raises(ValueError, match=r"pooling: 'median'.*\['cls', 'mean', 'max', 'mean_max', 'attention'\]"):
        build_pooling("median", H)


@pytest.mark.parametrize("name", POOLING_OPTIONS)
def test_padding_does_not_change_pooled_output(name):
    torch.manual_seed(0)
    pool = build_pooling(name, H)
    real = torch.randn(1, 3, H)
    padded = torch.cat([real, 100.0 + torch.randn(1, 4, H)], dim=1)  # huge values in the padding positions
    mask_padded = torch.tensor([[1, 1, 1, 0, 0, 0, 0]])
    alone = pool(real, torch.ones(1, 3, dtype=torch.long))
    assert alone.shape == (1, pool.output_dim())
    assert torch.allclose(alone, pool(padded, mask_padded), atol=1e-6)


def test_mean_and_max_values():
    hidden = torch.tensor([[[1.0, -2.0], [3.0, 4.0], [50.0, 60.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(build_pooling("mean", 2)(hidden, mask), torch.tensor([[2.0, 1.0]]))
    assert torch.equal(build_pooling("max", 2)(hidden, mask), torch.tensor([[3.0, 4.0]]))
    assert torch.equal(build_pooling("mean_max", 2)(hidden, mask), torch.tensor([[2.0, 1.0, 3.0, 4.0]]))
    assert torch.equal(build_pooling("cls", 2)(hidden, mask), torch.tensor([[1.0, -2.0]]))
    empty = torch.zeros(1, 3, dtype=torch.long)
    assert torch.equal(build_pooling("max", 2)(hidden, empty), torch.zeros(1, 2))
    assert torch.equal(build_pooling("mean", 2)(hidden, empty), torch.zeros(1, 2))


@pytest.mark.parametrize("name", POOLING_OPTIONS)
def test_no_in_place_writes_and_gradients_flow(name):
    torch.manual_seed(1)
    pool = build_pooling(name, H)
    hidden = torch.randn(2, 5, H, requires_grad=True)
    before = hidden.detach().clone()
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    pool(hidden, mask).sum().backward()
    assert torch.equal(hidden.detach(), before)
    assert torch.isfinite(hidden.grad).all()
    if name != "cls":
        assert (hidden.grad[0, 3:] == 0).all() and (hidden.grad[0, :3] != 0).any()


def test_attention_pooling_is_learned_and_masked():
    torch.manual_seed(2)
    pool = AttentionPooling(H)
    hidden, mask = torch.randn(2, 4, H), torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    pool(hidden, mask).pow(2).sum().backward()
    assert pool.scorer.weight.grad.abs().sum() > 0 and pool.dense.weight.grad.abs().sum() > 0
    one_token = pool(hidden[:1], torch.tensor([[1, 0, 0, 0]]))
    assert torch.allclose(one_token, hidden[0, 0].unsqueeze(0), atol=1e-6)


@pytest.mark.parametrize("name", POOLING_OPTIONS)
def test_half_precision_stays_finite(name):
    pool = build_pooling(name, H).to(torch.bfloat16)
    hidden = (torch.randn(2, 5, H) * 50).to(torch.bfloat16)
    out = pool(hidden, torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
