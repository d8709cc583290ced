"""Tensor shapes and causality of both encoders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from models.nn.batching import collate
from models.training.data import EncodedSequence

Factory = Callable[..., Any]


def test_shapes(arch: str, make_network: Factory, make_seq: Factory) -> None:
    net = make_network(arch)
    seqs = [make_seq([2, 3, 4]), make_seq([5]), make_seq(list(range(2, 14)))]
    batch = collate(seqs, max_len=8, use_time=False)
    assert batch.items.shape == (3, 8)  # padded to the longest window, capped at max_len
    assert batch.lengths.tolist() == [3, 1, 8]
    states = net(batch)
    assert states.shape == (3, 8, 16)
    last = net.last_state(states, batch.lengths)
    assert last.shape == (3, 16)
    assert net.next_logits(last).shape == (3, 30)
    assert net.purchase_logits(last).shape == (3, 30)
    assert torch.isfinite(net.next_logits(last)).all()


def test_truncation_keeps_most_recent_events(make_seq: Factory) -> None:
    batch = collate([make_seq(list(range(2, 14)))], max_len=4, use_time=False)
    assert batch.items[0].tolist() == [10, 11, 12, 13]


def test_time_gaps_are_bucketed_when_used() -> None:
    s = EncodedSequence(np.array([2, 3, 4]), np.array([2, 3, 5]), np.array([0, 1_000, 3_601_000]))
    assert collate([s], 8, use_time=True).gaps[0].tolist() == [1, 3, 13]
    assert collate([s], 8, use_time=False).gaps[0].tolist() == [1, 1, 1]


def test_causality_later_item_does_not_change_earlier_positions(
    causal_arch: str, make_network: Factory, make_seq: Factory
) -> None:
    net = make_network(causal_arch)
    a = collate([make_seq([2, 3, 4, 5, 6])], 8, False)
    b = collate([make_seq([2, 3, 4, 5, 29])], 8, False)  # only the last event differs
    ha, hb = net(a), net(b)
    torch.testing.assert_close(ha[0, :4], hb[0, :4])
    assert not torch.allclose(ha[0, 4], hb[0, 4])  # ...and the change is visible where it should be


def test_padding_does_not_change_real_positions(
    arch: str, make_network: Factory, make_seq: Factory
) -> None:
    net = make_network(arch)
    alone = net(collate([make_seq([2, 3, 4])], 8, False))
    padded = net(collate([make_seq([2, 3, 4]), make_seq([5, 6, 7, 8, 9, 10])], 8, False))
    torch.testing.assert_close(alone[0, :3], padded[0, :3])


def test_event_type_changes_the_output(arch: str, make_network: Factory, make_seq: Factory) -> None:
    net = make_network(arch)
    view = net(collate([make_seq([2, 3], [2, 2])], 8, False))
    buy = net(collate([make_seq([2, 3], [2, 5])], 8, False))
    assert not torch.allclose(view[0, 1], buy[0, 1])


@pytest.mark.parametrize(
    "variant", [{}, {"positions": "relative"}, {"filter_scope": "causal"}, {"n_layers": 1}]
)
def test_the_newest_state_alone_equals_the_full_pass_and_its_gradient(
    arch: str, variant: dict[str, object], make_network: Factory, make_seq: Factory
) -> None:
    """``encode_last`` (the last block at the newest event only) == the newest state of
    the full pass, in value and in its gradient with respect to every event input."""
    if "positions" in variant and arch != "bsarec":
        pytest.skip("relative positions are a bsarec option")
    net = make_network(arch, **variant)
    seqs = [make_seq([2, 3, 4]), make_seq([5]), make_seq(list(range(2, 14))), make_seq([7, 7])]
    batch = collate(seqs, max_len=8, use_time=False, width=8)
    x = net.content(batch).detach()
    x_full, x_last = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    full = net.last_state(net.encode(x_full, batch.lengths), batch.lengths)
    last = net.encode_last(x_last, batch.lengths)
    torch.testing.assert_close(last, full)
    direction = torch.randn_like(full)
    (grad_full,) = torch.autograd.grad(full, x_full, direction)
    (grad_last,) = torch.autograd.grad(last, x_last, direction)
    torch.testing.assert_close(grad_last, grad_full)
    assert grad_last[0, :3].abs().sum() > 0  # every real event matters...
    assert grad_last[1, 1:].abs().sum() == 0  # ...and padding never does
