"""The two task heads; both score every catalogue item against a sequence state.

Both reuse the item embedding table (weight tying): with ~12k items and ~150k
training positions, separate output tables would mostly stay untrained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.nn.config import BlendConfig
from models.nn.softmax_loss import softmax_cross_entropy
from models.nn.vocab import FIRST


class NextItemHead(nn.Module):
    """Logits of P(next item = j | state) over the catalogue (full softmax)."""

    def __init__(self, n_items: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n_items))  # absorbs popularity

    def forward(self, h: torch.Tensor, item_table: torch.Tensor) -> torch.Tensor:
        return F.linear(h, item_table[FIRST:], self.bias)  # one fused addmm

    def loss(
        self, h: torch.Tensor, item_table: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Mean cross-entropy of the (N,) real target columns: ``cross_entropy(forward(h))``
        without materialising the log-softmax (:mod:`models.nn.softmax_loss`)."""
        return softmax_cross_entropy(h, item_table[FIRST:], self.bias, targets)


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


def seen_mask(items: torch.Tensor, n_items: int) -> torch.Tensor:
    """(B, L) item indices -> (B, n_items) 1.0 where the item is in the row's window."""
    real = items >= FIRST
    rows = torch.arange(len(items), device=items.device).unsqueeze(1).expand_as(items)[real]
    mask = torch.zeros(len(items), n_items, device=items.device)
    return mask.index_put_((rows, items[real] - FIRST), torch.ones((), device=items.device))


def blend(
    next_logits: torch.Tensor,
    purchase_logits: torch.Tensor | None,
    transition_logp: torch.Tensor | None,
    weights: BlendConfig,
    history: torch.Tensor | None = None,
) -> torch.Tensor:
    """Combine the heads (and transitions) in log space; see :class:`BlendConfig`.

    ``history`` is the (B, L) window of item indices that the ``seen`` term demotes.
    """
    score = weights.next_item * F.log_softmax(next_logits, dim=-1)
    if purchase_logits is not None and weights.purchase:
        score = score + weights.purchase * F.logsigmoid(purchase_logits)
    if transition_logp is not None and weights.transition:
        score = score + weights.transition * transition_logp
    if history is not None and weights.seen:
        score = score - weights.seen * seen_mask(history, score.shape[-1]).to(score.dtype)
    return score
