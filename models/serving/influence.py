"""Per-event influence on the top-scored item.

Its faithfulness is checked by :func:`models.evaluation.deletion.deletion_check`.

Two methods, each giving one non-negative weight per input event, summing to 1:

- ``grad_x_input``: gradient of the top item's blended score with respect to each
  event's input embedding, dotted with that embedding (first-order estimate of
  the score lost by zeroing the event). The transition term of the blend depends
  only on the last event, so its evidence over popularity,
  ``transition * (log P_T(top | last) - log p(top))``, is added to the last event.
- ``leave_one_out``: the top item's score drop when each event is deleted
  (one extra forward pass per event).

Negative contributions (events that argue against the item) are clipped to 0
before normalising; when nothing is positive the weights are equal. Events
before the model's window (``max_len``) get weight 0.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch

from models.base import normalise
from models.nn.batching import Batch, collate, newest
from models.nn.predictor import Predictor
from models.training.data import EncodedSequence

METHODS = ("grad_x_input", "leave_one_out")


def delete_event(seq: EncodedSequence, position: int) -> EncodedSequence:
    """The sequence without its event at ``position`` (later gaps are recomputed from ts)."""
    ts = None if seq.ts is None else np.delete(seq.ts, position)
    return EncodedSequence(np.delete(seq.items, position), np.delete(seq.events, position), ts)


def _raw_grad_x_input(
    predictor: Predictor, seqs: Sequence[EncodedSequence], top: torch.Tensor
) -> torch.Tensor:
    cfg = predictor.network.config
    batch = collate(seqs, cfg.max_len, cfg.use_time).to(predictor.device)
    predictor.network.eval()
    tlogp = predictor.transition_logp(batch)
    with graph_for_inputs():
        x, scores = differentiable_scores(predictor, batch, tlogp)
        return grad_x_input(predictor, batch, x, scores, top, tlogp)


def graph_for_inputs() -> contextlib.ExitStack:
    """Autograd on, cuDNN off: cuDNN refuses RNN backward in eval mode (native kernels are fine)."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.enable_grad())
    stack.enter_context(torch.backends.cudnn.flags(enabled=False))
    return stack


def differentiable_scores(
    predictor: Predictor, batch: Batch, tlogp: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The event inputs ``x`` (requiring grad) and the blended scores computed from them."""
    x = predictor.network.content(batch).detach().requires_grad_(True)
    return x, predictor.score_from_inputs(x, batch, tlogp)


def grad_x_input(
    predictor: Predictor,
    batch: Batch,
    x: torch.Tensor,
    scores: torch.Tensor,
    top: torch.Tensor,
    tlogp: torch.Tensor | None,
) -> torch.Tensor:
    """(B, L) raw contributions of each input event to ``scores[b, top[b]]`` (on the CPU)."""
    cfg = predictor.network.config
    (grad,) = torch.autograd.grad(scores.gather(1, top.unsqueeze(1)).sum(), x)
    contrib = (grad * x).sum(-1).detach() * batch.mask
    if tlogp is not None and cfg.blend.transition:
        log_pop = torch.from_numpy(predictor.transitions.log_pop).to(tlogp)  # type: ignore[union-attr]
        top_logp = tlogp.gather(1, top.unsqueeze(1)).squeeze(1)
        evidence = cfg.blend.transition * (top_logp - log_pop[top])
        last = newest(batch.lengths).unsqueeze(1)
        contrib.scatter_add_(1, last, evidence.unsqueeze(1).to(contrib.dtype))
    return contrib.cpu()


def raw_leave_one_out(
    predictor: Predictor, seqs: Sequence[EncodedSequence], top: torch.Tensor
) -> torch.Tensor:
    cfg = predictor.network.config
    windows = [min(len(s.items), cfg.max_len) for s in seqs]
    variants, owner, pos = [], [], []
    for b, s in enumerate(seqs):
        start = len(s.items) - windows[b]
        for p in range(windows[b]):
            variants.append(delete_event(s, start + p))
            owner.append(b)
            pos.append(p)
    full = predictor.score(collate(seqs, cfg.max_len, cfg.use_time)).gather(1, top.unsqueeze(1))
    out = torch.zeros(len(seqs), max(windows) if windows else 1)
    owner_t = torch.tensor(owner, dtype=torch.int64)
    for i in range(0, len(variants), 1024):
        chunk = slice(i, i + 1024)
        scores = predictor.score(collate(variants[chunk], cfg.max_len, cfg.use_time))
        o = owner_t[chunk].to(scores.device)
        drop = full.squeeze(1)[o] - scores.gather(1, top[o].unsqueeze(1)).squeeze(1)
        out[owner_t[chunk], torch.tensor(pos[chunk])] = drop.cpu()
    return out


def influences(
    predictor: Predictor,
    seqs: Sequence[EncodedSequence],
    top: torch.Tensor,
    method: str = "grad_x_input",
) -> list[list[float]]:
    """One weight per event of each full sequence, for the item column ``top[b]``."""
    if method not in METHODS:
        raise ValueError(f"unknown influence method {method!r}; choose from {METHODS}")
    if not seqs:
        return []
    top = top.to(predictor.device)
    raw_fn = _raw_grad_x_input if method == "grad_x_input" else raw_leave_one_out
    raw = raw_fn(predictor, seqs, top)
    return normalised_weights(raw, [len(s.items) for s in seqs], predictor.network.config.max_len)


def normalised_weights(
    raw: torch.Tensor, lengths: Sequence[int], max_len: int
) -> list[list[float]]:
    """Clip raw (B, L) contributions at 0 and normalise each window; older events get 0."""
    raw = raw.clamp(min=0.0)
    out: list[list[float]] = []
    for b, n in enumerate(lengths):
        if n == 0:
            out.append([])
            continue
        window = min(n, max_len)
        out.append([0.0] * (n - window) + normalise(raw[b, :window].tolist()))
    return out
