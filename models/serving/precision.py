"""Numeric precision of the served pass's catalogue-wide products.

- ``fp32``: everything in float32 (the default).
- ``bf16``: the two catalogue-wide products of the serving pass, the logits
  ``h E^T`` and the gradient's mixture ``softmax(L) E``, take bfloat16 operands
  (the item table is converted once); the bias is added in float32.
- ``int8``: the logits come from a dynamically quantized ``nn.Linear`` holding the
  item table (int8 weights with one scale per item, the input quantized per call);
  the bias is kept in float32 inside it. The gradient's mixture stays float32
  (per-tensor quantized probabilities would round most of them to zero).

The encoder stays float32 in every mode: its gradient is the influences, and
quantized linears have no backward. Its ``nn.Linear`` layers quantized the same
way were also measured no faster without influences (docs/benchmarks.md), so only
the ranking's product is quantized, and influences on or off rank alike.

Eager-mode dynamic quantization (``torch.ao.quantization.quantize_dynamic``) runs
on the CPU only (fbgemm / x86 kernels); ``int8`` on another device is refused.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

PRECISIONS = ("fp32", "bf16", "int8")


def _quantize_linears(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with its ``nn.Linear`` layers dynamically quantized to int8,
    one weight scale per output row (per item)."""
    from torch.ao import quantization as q

    spec = {nn.Linear: q.per_channel_dynamic_qconfig}
    # torch marks eager-mode quantization deprecated in favour of torchao, which this
    # project does not depend on; the kernels themselves are unchanged.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_.*", category=UserWarning)
        out: nn.Module = q.quantize_dynamic(module, spec, dtype=torch.qint8)
        return out


class CatalogueProduct:
    """``h E^T + b`` (ranking logits) and ``P E`` (gradient mixture) in one precision.

    ``table`` and ``bias`` are the network's own tensors: in ``fp32`` they are read
    at every call, in the other modes converted once here (the served network is
    frozen).
    """

    def __init__(self, table: torch.Tensor, bias: torch.Tensor, precision: str) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        if precision == "int8" and table.device.type != "cpu":
            raise ValueError("int8 serving runs on the CPU only (dynamic quantization)")
        self.precision = precision
        self._table, self._bias = table, bias
        self._table16 = table.detach().to(torch.bfloat16) if precision == "bf16" else None
        self._q: nn.Module | None = None
        if precision == "int8":
            linear = nn.Linear(table.shape[1], table.shape[0])
            with torch.no_grad():
                linear.weight.copy_(table)
                linear.bias.copy_(bias)
            wrapped = _quantize_linears(nn.Sequential(linear))
            self._q = next(iter(wrapped.children()))

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """(B, d) -> (B, N) float32 logits (a fresh tensor: callers modify it in place)."""
        if self._table16 is not None:
            return F.linear(h.to(torch.bfloat16), self._table16).float().add_(self._bias)
        if self._q is not None:
            out: torch.Tensor = self._q(h)
            return out
        return F.linear(h, self._table, self._bias)

    def mixture(self, probs: torch.Tensor) -> torch.Tensor:
        """(B, N) row-stochastic weights -> (B, d) float32 ``probs @ E``."""
        if self._table16 is not None:
            return (probs.to(torch.bfloat16) @ self._table16).float()
        return probs @ self._table
