"""The faster training-step pieces against the PyTorch operations they replace."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.nn.dropout import Dropout
from models.nn.softmax_loss import softmax_cross_entropy


def test_fused_softmax_loss_matches_cross_entropy_and_its_gradients() -> None:
    torch.manual_seed(0)
    h = torch.randn(7, 5, requires_grad=True)
    table = torch.randn(40, 5, requires_grad=True)
    bias = torch.randn(40, requires_grad=True)
    targets = torch.tensor([0, 3, 39, 3, 17, 8, 21])
    ref = F.cross_entropy(F.linear(10 * h, table, bias), targets)  # large logits: stability
    ref_grads = torch.autograd.grad(2.0 * ref, (h, table, bias))
    ours = softmax_cross_entropy(10 * h, table, bias, targets)
    grads = torch.autograd.grad(2.0 * ours, (h, table, bias))
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-5)


def test_fused_softmax_loss_refuses_a_second_backward() -> None:
    h = torch.randn(3, 4, requires_grad=True)
    loss = softmax_cross_entropy(h, torch.randn(6, 4), torch.zeros(6), torch.tensor([1, 2, 5]))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="one backward"):
        loss.backward()


def test_dropout_keeps_one_minus_p_scaled_and_is_the_identity_in_eval() -> None:
    torch.manual_seed(0)
    drop = Dropout(0.3)
    x = torch.ones(200_000)
    y = drop(x)
    kept = y != 0
    assert abs(float(kept.float().mean()) - 0.7) < 0.01
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.7))
    assert torch.equal(drop.eval()(x), x)
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))
    with pytest.raises(ValueError):
        Dropout(1.5)
