"""Full-ranking metrics: HR@K, NDCG@K and MRR from the target's rank.

Ties are broken by column (a stable sort by descending score), never in the
target's favour, and any non-finite score aborts: with ``rank = #(s > s_t)`` a
NaN target would rank first and count as a fake hit.

>>> ranks = target_ranks(torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.3, 0.3]]), torch.tensor([2, 1]))
>>> ranks.tolist()
[1, 1]
>>> m = RankingMetrics(ks=(1, 2)); m.update(ranks); m.result()["HR@1"]
0.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

KS: tuple[int, ...] = (5, 10, 20)


class NonFiniteScoreError(RuntimeError):
    """Raised when a model produces NaN or infinite scores."""


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of each target column in its row of ``scores`` ((B, N), (B,) -> (B,)).

    Equal scores rank by column, as a stable descending sort would. Targets outside
    the catalogue (negative column) get rank N, a certain miss.
    """
    bad = ~torch.isfinite(scores)
    if bad.any():
        rows = bad.any(dim=1).nonzero().flatten().tolist()[:5]
        raise NonFiniteScoreError(f"non-finite scores in {int(bad.sum())} cells, rows {rows}...")
    n = scores.shape[1]
    valid = targets >= 0
    t = targets.clamp(min=0)
    target_scores = scores.gather(1, t.unsqueeze(1))
    cols = torch.arange(n, device=scores.device).unsqueeze(0)
    ahead = (scores > target_scores) | ((scores == target_scores) & (cols < t.unsqueeze(1)))
    return torch.where(valid, ahead.sum(dim=1), torch.full_like(t, n))


def ranks_under_demotion(
    scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, weights: Sequence[float]
) -> list[torch.Tensor]:
    """``target_ranks(scores - w * mask, targets)`` for each ``w``, from one dense pass.

    Demoting the masked cells (a user's window: a few per row) by ``w`` changes the
    comparison with the target only at those cells, so each ``w`` costs a sparse
    correction. Rows whose target is itself masked are recomputed densely.
    """
    base = target_ranks(scores, targets)
    n = scores.shape[1]
    t = targets.clamp(min=0)
    ts = scores.gather(1, t.unsqueeze(1)).squeeze(1)
    r, c = mask.nonzero(as_tuple=True)
    cell = scores[r, c]
    before = (cell > ts[r]) | ((cell == ts[r]) & (c < t[r]))
    target_masked = (mask.gather(1, t.unsqueeze(1)).squeeze(1) > 0).nonzero().squeeze(1)
    out = []
    for w in weights:
        if not w:
            out.append(base)
            continue
        moved = cell - w
        after = (moved > ts[r]) | ((moved == ts[r]) & (c < t[r]))
        delta = torch.zeros_like(base).index_add_(0, r, after.long() - before.long())
        ranks = torch.where(targets >= 0, base + delta, torch.full_like(base, n))
        if len(target_masked):
            rows = target_masked
            ranks[rows] = target_ranks(scores[rows] - w * mask[rows], targets[rows])
        out.append(ranks)
    return out


class RankingMetrics:
    """Accumulates ranks; ``result()`` gives the means with keys ``HR@K``, ``NDCG@K``, ``MRR``."""

    def __init__(self, ks: Sequence[int] = KS) -> None:
        self.ks = tuple(ks)
        self.hits = dict.fromkeys(self.ks, 0.0)
        self.ndcg = dict.fromkeys(self.ks, 0.0)
        self.rr = 0.0
        self.count = 0

    def update(self, ranks: torch.Tensor) -> None:
        r = ranks.detach().cpu().double()
        for k in self.ks:
            hit = r < k
            self.hits[k] += float(hit.sum())
            # One relevant item: DCG = 1 / log2(rank + 2), and the ideal DCG is 1.
            self.ndcg[k] += float((hit.double() / torch.log2(r + 2.0)).sum())
        self.rr += float((1.0 / (r + 1.0)).sum())
        self.count += len(r)

    def result(self) -> dict[str, float]:
        n = max(self.count, 1)
        out: dict[str, float] = {}
        for k in self.ks:
            out[f"HR@{k}"] = self.hits[k] / n
        for k in self.ks:
            out[f"NDCG@{k}"] = self.ndcg[k] / n
        out["MRR"] = self.rr / n
        out["users"] = self.count
        assert all(math.isfinite(v) for v in out.values())
        return out
