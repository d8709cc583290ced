"""The two task heads; both score every catalogue item against a sequence state.

Both reuse the item embedding table (weight tying): with ~12k items and ~150k
training positions, separate output tables would mostly stay untrained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.nn.config import BlendConfig
from models.nn.vocab import FIRST


class NextItemHead(nn.Module):
    """Logits of P(next item = j | state) over the catalogue (full softmax)."""

    def __init__(self, n_items: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n_items))  # absorbs popularity

    def forward(self, h: torch.Tensor, item_table: torch.Tensor) -> torch.Tensor:
        return F.linear(h, item_table[FIRST:], self.bias)  # one fused addmm


class PurchaseHead(nn.Module):
    """Logits of P(the next event is a purchase | next item = j, state)."""

    def __init__(self, dim: int, n_items: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.bias = nn.Parameter(torch.zeros(n_items))

    def forward(self, h: torch.Tensor, item_table: torch.Tensor) -> torch.Tensor:
        return F.linear(self.proj(h), item_table[FIRST:], self.bias)

    def target_logits(
        self, h: torch.Tensor, item_table: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Logit for the observed next item only ((N, d), (N,) column ids -> (N,))."""
        return (self.proj(h) * item_table[FIRST + targets]).sum(-1) + self.bias[targets]


def blend(
    next_logits: torch.Tensor,
    purchase_logits: torch.Tensor | None,
    transition_logp: torch.Tensor | None,
    weights: BlendConfig,
) -> torch.Tensor:
    """Combine the heads (and transitions) in log space; see :class:`BlendConfig`."""
    score = weights.next_item * F.log_softmax(next_logits, dim=-1)
    if purchase_logits is not None and weights.purchase:
        score = score + weights.purchase * F.logsigmoid(purchase_logits)
    if transition_logp is not None and weights.transition:
        score = score + weights.transition * transition_logp
    return score
