"""The serving pass: top-k and grad x input influences, few catalogue-wide passes.

With the purchase head unused (the benchmark checkpoints), the blended score is

``next * (L_j - lse(L)) + t * (log(a p_j) - log(c_i + a) + [j follows i] * corr_ij)``
``- seen * [j in the window]``

where ``L = h E^T + b`` are the next-item logits. Per row, ``lse`` and ``log(c_i + a)``
are constants, so the ranking needs only ``next * L_j + t * log(a p_j)`` plus a
sparse correction at the last item's observed successors: one ``addmm`` with a
folded bias, a scatter, and a top-k. The gradient of the top item's score with
respect to the sequence state ``h`` is written out,
``next * (E_top - softmax(L) E)``, so autograd only runs through the encoder.
Every catalogue-wide tensor is touched a handful of times, never kept for autograd.

``precision`` (:mod:`models.serving.precision`) picks the arithmetic of the
catalogue-wide products; the encoder is always float32.

Checkpoints whose blend uses the purchase head take the generic path (the
reference formula of :mod:`models.nn.predictor`, differentiated by autograd),
always in float32.
``tests/models`` checks both paths against that reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.nn.batching import Batch, newest
from models.nn.predictor import Predictor
from models.nn.vocab import FIRST
from models.serving.influence import differentiable_scores, grad_x_input, graph_for_inputs
from models.serving.precision import CatalogueProduct


@dataclass(slots=True)
class ServedBatch:
    top_scores: torch.Tensor  # (B, k) blended scores, best first (CPU)
    top_cols: torch.Tensor  # (B, k) catalogue columns (CPU)
    contributions: torch.Tensor | None  # (B, L) raw grad x input of each event (CPU)


class ServingPass:
    def __init__(self, predictor: Predictor, precision: str = "fp32") -> None:
        self.predictor = predictor
        net, w = predictor.network, predictor.weights
        self.fast = not (net.config.purchase_trained and w.purchase)
        self.product = CatalogueProduct(net.item_table[FIRST:], net.next_head.bias, precision)
        trans = predictor.transitions
        self.t = w.transition if trans is not None else 0.0
        self.n = w.next_item
        self.seen = w.seen
        dev = predictor.device
        self._log_apop64 = np.zeros(net.config.n_items)
        if self.t:
            assert trans is not None
            self._log_apop64 = trans.log_alpha_pop(w.transition_alpha)
            self._log_pop = torch.from_numpy(trans.log_pop.astype(np.float32)).to(dev)
        else:
            self._log_pop = torch.zeros(net.config.n_items, device=dev)
        self._log_apop = torch.from_numpy(self._log_apop64.astype(np.float32)).to(dev)

    def run(self, batch: Batch, k: int, influences: bool) -> ServedBatch:
        return self.run_many([batch], k, influences)[0]

    def run_many(self, batches: Sequence[Batch], k: int, influences: bool) -> list[ServedBatch]:
        """Each batch (one padding width) through the encoder, then all their rows
        through the catalogue-wide pass at once: its products read the whole item
        table however few the rows, so one pass per batch would read it again."""
        if not self.fast:
            return [self._generic(batch, k, influences) for batch in batches]
        net = self.predictor.network
        rows = Rows(batches)
        if not influences:
            with torch.inference_mode():
                h = torch.cat([net.newest_state(batch) for batch in batches])
                top_scores, top_cols, _, _ = self._rank(h, rows, k, need_softmax=False)
            return rows.served(top_scores.cpu(), top_cols.cpu(), None)
        with graph_for_inputs():
            xs = [net.content(batch).detach().requires_grad_(True) for batch in batches]
            hs = [net.encode_last(x, batch.lengths) for x, batch in zip(xs, batches, strict=True)]
            with torch.no_grad():
                h = torch.cat(hs).detach()
                top_scores, top_cols, probs, trans_top = self._rank(h, rows, k, True)
                top = top_cols[:, 0]
                assert probs is not None  # asked for above
                grad_h = self.n * (net.item_table[FIRST:][top] - self.product.mixture(probs))
            grads = torch.autograd.grad(hs, xs, grad_outputs=rows.split(grad_h))
        evidence = self.t * (trans_top - self._log_pop[top]) if self.t else None
        contribs = []
        for batch, x, grad_x, ev in zip(batches, xs, grads, rows.split(evidence), strict=True):
            contrib = (grad_x * x.detach()).sum(-1) * batch.mask
            if ev is not None:
                last = newest(batch.lengths).unsqueeze(1)
                contrib.scatter_add_(1, last, ev.unsqueeze(1).to(contrib.dtype))
            contribs.append(contrib.cpu())
        return rows.served(top_scores.cpu(), top_cols.cpu(), contribs)

    def _rank(
        self, h: torch.Tensor, rows: Rows, k: int, need_softmax: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Top-k of the blended score; softmax(L) and log P_T(top | last) for the gradient."""
        logits = self.product.logits(h)  # (B, N)
        if need_softmax:  # one exp pass gives both softmax(L) and lse(L)
            peak = logits.amax(dim=1, keepdim=True)
            probs = (logits - peak).exp_()
            total = probs.sum(dim=1, keepdim=True)
            probs.div_(total)
            lse = (peak + total.log()).squeeze(1)
        else:
            probs, lse = None, torch.logsumexp(logits, dim=1)
        # Ranking needs only n * L + t * log(a p) (+ sparse corrections): reuse the logits.
        rank = logits.mul_(self.n) if self.n != 1 else logits
        if self.seen:  # a constant per (row, item): ranks and scores, never gradients
            seen_rows, seen_cols = rows.seen()
            rank.index_put_((seen_rows, seen_cols), rank.new_tensor(-self.seen), accumulate=True)
        if not self.t:
            top_rank, top_cols = rank.topk(k, dim=1)
            no_transitions = torch.zeros(len(h), device=h.device)
            return top_rank - (self.n * lse).unsqueeze(1), top_cols, probs, no_transitions
        trans = self.predictor.transitions
        assert trans is not None
        a = self.predictor.weights.transition_alpha
        last = rows.last_items(self.predictor)
        log_tot = trans.log_totals(last, a)
        # Observed successors sit above the popularity floor by log P_T - floor.
        r, c, logp = trans.observed(last, a, log_tot)
        lift = logp - (self._log_apop64[c] - log_tot[r])
        rank.add_(self._log_apop, alpha=self.t)
        rank.index_put_(
            (self._tensor(r, torch.int64), self._tensor(c, torch.int64)),
            self.t * self._tensor(lift, torch.float32),
            accumulate=True,
        )
        top_rank, top_cols = rank.topk(k, dim=1)
        top_scores = top_rank - (self.n * lse + self.t * self._tensor(log_tot)).unsqueeze(1)
        trans_top = trans.log_prob_at(last, top_cols[:, 0].cpu().numpy(), a)
        return top_scores, top_cols, probs, self._tensor(trans_top)

    def _tensor(self, a: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.from_numpy(a).to(dtype=dtype, device=self.predictor.device)

    def _generic(self, batch: Batch, k: int, influences: bool) -> ServedBatch:
        pred = self.predictor
        tlogp = pred.transition_logp(batch)
        if not influences:
            with torch.inference_mode():
                scores = pred.score_from_inputs(pred.network.content(batch), batch, tlogp)
                top_scores, top_cols = scores.topk(k, dim=1)
            return ServedBatch(top_scores.cpu(), top_cols.cpu(), None)
        with graph_for_inputs():
            x, scores = differentiable_scores(pred, batch, tlogp)
            top_scores, top_cols = scores.detach().topk(k, dim=1)
            raw = grad_x_input(pred, batch, x, scores, top_cols[:, 0], tlogp)
        return ServedBatch(top_scores.cpu(), top_cols.cpu(), raw)


class Rows:
    """The rows of several batches, stacked in order for the catalogue-wide pass."""

    def __init__(self, batches: Sequence[Batch]) -> None:
        self.batches = batches
        self.sizes = [len(batch.lengths) for batch in batches]

    def split(self, t: torch.Tensor | None) -> Sequence[torch.Tensor | None]:
        """``t``'s rows back to their batches."""
        if t is None:
            return [None] * len(self.batches)
        return t.split(self.sizes)

    def seen(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Row and column of each item in a row's window, once each."""
        items = [batch.items for batch in self.batches]
        n_cols = 1 + max(int(i.max()) for i in items)
        keys = []
        offset = 0
        for part in items:
            row = torch.arange(offset, offset + len(part), device=part.device).unsqueeze(1)
            keys.append((row * n_cols + part)[part >= FIRST])
            offset += len(part)
        unique = torch.cat(keys).unique()  # an item twice in a window is demoted once
        return unique // n_cols, unique % n_cols - FIRST

    def last_items(self, predictor: Predictor) -> np.ndarray:
        return np.concatenate([predictor.last_items(batch) for batch in self.batches])

    def served(
        self,
        top_scores: torch.Tensor,
        top_cols: torch.Tensor,
        contributions: Sequence[torch.Tensor] | None,
    ) -> list[ServedBatch]:
        contribs = contributions if contributions is not None else [None] * len(self.batches)
        return [
            ServedBatch(scores, cols, contrib)
            for scores, cols, contrib in zip(
                top_scores.split(self.sizes), top_cols.split(self.sizes), contribs, strict=True
            )
        ]
