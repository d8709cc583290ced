"""Served precision modes: the catalogue product within its rounding bound, the same
top items as float32 up to near-ties, and influences in every mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.base import Interaction
from models.nn.batching import collate
from models.nn.vocab import FIRST, ItemVocab
from models.serving import checkpoint
from models.serving.precision import CatalogueProduct
from models.serving.scorer import NeuralScorer

Factory = Callable[..., Any]
ITEMS = [str(100 + i) for i in range(30)]


def error_bound(h: torch.Tensor, table: torch.Tensor, precision: str) -> torch.Tensor:
    """(B, N) worst-case |logit - float32 logit| of each mode's rounding.

    bf16: each operand carries a relative error of at most 2^-9 (8-bit significand,
    round to nearest) and the product is rounded once more, so a term ``h_i E_ji``
    is off by at most ``(2^-9 + 2^-9 + 2^-18) |h_i E_ji|``, the output by 2^-9.
    int8: h is quantized per call with one step ``s_h = range(h) / 255`` (off by at
    most ``s_h / 2`` each), each item row with its own step ``s_j = max|E_j| / 127``
    (off by at most ``s_j / 2``): the product is off by at most
    ``s_h/2 sum|E_j| + s_j/2 sum|h| + d s_h s_j / 4``.
    """
    if precision == "fp32":
        return torch.zeros(len(h), len(table))
    habs, tabs = h.abs(), table.abs()
    if precision == "bf16":
        dot = habs @ tabs.T
        return 2.0**-8 * dot * 1.01 + 2.0**-9 * (dot + 1.0)
    lo, hi = min(float(h.min()), 0.0), max(float(h.max()), 0.0)  # the range includes 0
    s_h = (hi - lo) / 255
    s_j = tabs.amax(dim=1) / 127
    d = h.shape[1]
    return (s_h / 2) * tabs.sum(1) + (s_j / 2) * habs.sum(1, keepdim=True) + d * s_h * s_j / 4


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_catalogue_product_within_its_rounding_bound(precision: str, make_network: Factory) -> None:
    net = make_network("bsarec")
    table, bias = net.item_table[FIRST:].detach(), net.next_head.bias.detach()
    h = 2.0 * torch.randn(7, table.shape[1], generator=torch.Generator().manual_seed(1))
    exact = CatalogueProduct(table, bias, "fp32").logits(h)
    cheap = CatalogueProduct(table, bias, precision).logits(h)
    assert cheap.dtype == torch.float32 and cheap.shape == exact.shape
    err = (cheap - exact).abs()
    bound = error_bound(h, table, precision)
    assert (err <= bound + 1e-5).all(), float((err - bound).max())
    assert err.max() > 0  # the mode really computed in lower precision
    probs = torch.softmax(exact, dim=1)
    mix = CatalogueProduct(table, bias, precision).mixture(probs)
    # A convex combination of rows: bf16 operands are off by 2^-9 relative each.
    np.testing.assert_allclose(mix, probs @ table, atol=4 * 2.0**-9 * float(table.abs().max()))


def test_unknown_precision_and_int8_off_the_cpu_are_refused() -> None:
    table, bias = torch.zeros(4, 3), torch.zeros(4)
    with pytest.raises(ValueError, match="precision"):
        CatalogueProduct(table, bias, "fp16")
    with pytest.raises(ValueError, match="CPU"):
        CatalogueProduct(table.to("meta"), bias.to("meta"), "int8")


def _states(scorer: NeuralScorer, histories: list[list[Interaction]]) -> torch.Tensor:
    """The float32 network's sequence states of ``histories`` (B, d)."""
    net = scorer._ckpt.network
    batch = collate([scorer._encode(h) for h in histories], net.config.max_len, False)
    with torch.no_grad():
        return net.last_state(net(batch), batch.lengths)


def _histories() -> list[list[Interaction]]:
    rng = np.random.default_rng(0)
    return [
        [Interaction(ITEMS[int(i)], "view", 1000 * t) for t, i in enumerate(rng.integers(0, 30, n))]
        for n in (1, 3, 8, 2, 12, 5)
    ]


@pytest.mark.parametrize("influence", ["grad_x_input", "none"])
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_each_mode_serves_the_float32_top_items_and_influences(
    tmp_path: Path, precision: str, influence: str, make_network: Factory
) -> None:
    net = make_network("bsarec")
    net.config.blend.transition = 0.0  # scores are then the log-softmax of the logits
    checkpoint.save(tmp_path, net, ItemVocab(ITEMS), None, {"dataset": "unit"})
    histories, k = _histories(), 5
    exact = NeuralScorer.load(tmp_path, "cpu", influence_method=influence)
    cheap = NeuralScorer.load(tmp_path, "cpu", influence_method=influence, precision=precision)
    assert cheap.precision == precision
    ref, out = exact.score(histories, k), cheap.score(histories, k)
    # A served score is ``L_j - lse(L)`` (next-item weight 1, no transitions): off by
    # at most twice the largest logit error, bounded above for these states.
    h = _states(exact, histories)
    table = net.item_table[FIRST:].detach()
    tol = 2 * float(error_bound(h, table, precision).max()) + 1e-5
    for r, o, hist in zip(ref, out, histories, strict=True):
        ref_scores = dict(r.items)
        full = dict(exact.score([hist], 30)[0].items)  # float32 scores of every item
        for p, (item, score) in enumerate(o.items):
            # Each served item is the float32 one at its place, or a near-tie of it.
            assert full[item] >= r.items[p][1] - 2 * tol, (p, item)
            if item in ref_scores:
                assert score == pytest.approx(ref_scores[item], abs=tol)
        if influence == "none":
            assert o.influences == []
            continue
        assert len(o.influences) == len(hist)
        assert sum(o.influences) == pytest.approx(1.0) and min(o.influences) >= 0.0
        # The same item explained: the encoder and its gradient are float32 in both,
        # only softmax(L) in the written-out gradient moves (largest change seen 0.004).
        if o.items[0][0] == r.items[0][0]:
            np.testing.assert_allclose(o.influences, r.influences, atol=0.05)


def test_the_model_process_serves_the_chosen_precision(
    tmp_path: Path, make_network: Factory
) -> None:
    """The worker's default path: the setting reaches the scorer in the child process."""
    from models.serving.remote import ProcessScorer

    net = make_network("bsarec")
    checkpoint.save(tmp_path, net, ItemVocab(ITEMS), None, {"dataset": "unit"})
    here = NeuralScorer.load(tmp_path, "cpu", precision="int8")
    child = ProcessScorer(tmp_path, "cpu", "grad_x_input", 1, "int8")
    try:
        assert child.score(_histories(), 5) == here.score(_histories(), 5)
    finally:
        child.close()
