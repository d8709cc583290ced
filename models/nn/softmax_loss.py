"""Full-softmax cross-entropy over the catalogue, fused with its output layer.

The catalogue-wide logits are the largest tensor of a training step ((N, n_items)).
``F.cross_entropy(F.linear(...))`` keeps them, writes their log-softmax to a second
tensor, and in backward fills a third with zeros for the picked entries before
turning it into the logits' gradient. Here one buffer holds the logits, becomes the
softmax in place, and (backward) the logits' gradient in place, ``(p - onehot) / N``:
the same loss and gradients (to rounding) with two fewer passes over the largest
tensor. The buffer is consumed by the one backward it is made for (no double backward,
no ``retain_graph`` second call).
"""

from __future__ import annotations

from typing import Any

import torch


class _FusedSoftmaxCE(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, h: torch.Tensor, table: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        p = torch.addmm(bias, h, table.t())
        picked = p.gather(1, targets.unsqueeze(1)).squeeze(1)
        top = p.amax(1, keepdim=True)
        p.sub_(top).exp_()
        total = p.sum(1, keepdim=True)
        p.div_(total)
        ctx.save_for_backward(h, table, targets)
        ctx.probs = p
        return (top.squeeze(1) + total.squeeze(1).log() - picked).mean()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h, table, targets = ctx.saved_tensors
        p: torch.Tensor | None = ctx.probs
        if p is None:
            raise RuntimeError("the fused softmax loss supports one backward pass only")
        ctx.probs = None
        p[torch.arange(len(targets), device=p.device), targets] -= 1.0
        p.mul_(grad / len(targets))
        return p @ table, p.t() @ h, p.sum(0), None


def softmax_cross_entropy(
    h: torch.Tensor, table: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean over rows of ``-log softmax(h @ table.T + bias)[target]``; (N, d), (V, d), (V,),
    (N,) class ids (all real: no ignore index) -> scalar."""
    loss: torch.Tensor = _FusedSoftmaxCE.apply(h, table, bias, targets)
    return loss
