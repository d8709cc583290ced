"""SASRec-style causal Transformer encoder (Kang & McAuley, 2018), pre-norm variant.

Attention is written with ``scaled_dot_product_attention(is_causal=True)`` on
right-padded input: every real position sees only itself and earlier real
events, so no padding mask is needed and no row is ever fully masked (the
cause of NaN scores with PyTorch's fast path, left padding and a padding mask).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.nn.batching import newest, pick
from models.nn.dropout import Dropout


class CausalSelfAttention(nn.Module):
    """Causal multi-head attention; with ``max_lag`` > 0, plus a learned bias per head and
    distance from the query (0 .. max_lag - 1 events back), the only position signal then."""

    def __init__(self, dim: int, n_heads: int, dropout: float, max_lag: int = 0) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim {dim} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout
        self.lag_bias = nn.Parameter(torch.zeros(n_heads, max_lag)) if max_lag else None

    def _mask(self, length: int, device: torch.device) -> torch.Tensor | None:
        """(H, L, L) additive mask: the lag bias on and below the diagonal, -inf above."""
        if self.lag_bias is None:
            return None
        pos = torch.arange(length, device=device)
        lag = pos.unsqueeze(1) - pos.unsqueeze(0)
        bias = self.lag_bias[:, lag.clamp(0, self.lag_bias.shape[1] - 1)]
        return bias.masked_fill(lag < 0, float("-inf"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, dim = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.n_heads, dim // self.n_heads).unbind(2)
        mask = self._mask(length, x.device)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=mask is None,
        )
        return self.out(y.transpose(1, 2).reshape(b, length, dim))

    def last(self, x: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        """(B, L, d), (B,) -> (B, d): :meth:`forward` at position ``at`` of each row
        only. Keys and values are projected everywhere, the query at ``at`` alone."""
        b, length, dim = x.shape
        heads, width = self.n_heads, dim // self.n_heads
        w, bias = self.qkv.weight, self.qkv.bias
        q = F.linear(pick(x, at), w[:dim], bias[:dim]).view(b, heads, 1, width)
        k, v = F.linear(x, w[dim:], bias[dim:]).view(b, length, 2, heads, width).unbind(2)
        pos = torch.arange(length, device=x.device)
        mask = self._mask(length, x.device)
        if mask is None:  # causal: the row's own and earlier positions
            keys = (pos <= at.unsqueeze(1)).view(b, 1, 1, length)
        else:  # the lag bias of row ``at``, -inf above it already
            keys = mask[:, at].transpose(0, 1).unsqueeze(2)
        y = F.scaled_dot_product_attention(
            q,
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=keys,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out(y.reshape(b, dim))


class Block(nn.Module):
    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, n_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.ffn(self.norm2(x)))

    def last(self, x: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        """(B, L, d), (B,) -> (B, d): :meth:`forward` at position ``at`` of each row only."""
        x_at = pick(x, at) + self.drop(self.attn.last(self.norm1(x), at))
        return x_at + self.drop(self.ffn(self.norm2(x_at)))


class SASRecEncoder(nn.Module):
    """(B, L, d) event embeddings -> (B, L, d) states; position t depends on events <= t only."""

    def __init__(self, dim: int, n_layers: int, n_heads: int, dropout: float, max_len: int) -> None:
        super().__init__()
        # Positions count from the oldest event in the window; counting back from the
        # newest would leak the sequence length into earlier positions during training.
        self.positions = nn.Embedding(max_len, dim)
        self.drop = Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, n_heads, dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One row of positions per sequence (not one broadcast row): per-sample gradient
        # hooks (Opacus, models/training/privacy.py) need the batch dimension on every input.
        pos = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)
        h = self.drop(x + self.positions(pos))
        for block in self.blocks:
            h = block(h)
        return self.norm(h)

    def last(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, L, d) -> (B, d): the state after each sequence's newest event, as
        :meth:`forward` gives it there. Only the earlier blocks run at every position;
        the last block's feed-forward, the costliest part, runs at the newest alone."""
        pos = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)
        h = self.drop(x + self.positions(pos))
        for block in self.blocks[:-1]:
            h = block(h)
        final = self.blocks[-1]
        assert isinstance(final, Block)
        return self.norm(final.last(h, newest(lengths)))
