"""BSARec-style encoder: a fixed low-pass filter mixed with causal self-attention.

BSARec (Shin et al., AAAI 2024) keeps the lowest ``cutoff // 2 + 1`` Fourier modes
of a left-padded window of ``max_len`` events, rescales the rest by a learned
per-channel ``beta`` (stored as its square root, as in the paper's code), and mixes
that with self-attention: ``alpha * filter + (1 - alpha) * attention``. Both
branches and the feed-forward are post-norm residuals with dropout.

Their filter is an FFT over the whole window, so every position sees the future;
they only score the last position of each training prefix. Here the loss runs at
every position in one pass, so the filter is written as the causal convolution
that gives, at each position t, exactly what their FFT gives at the last position
of the window ending at t: ``low[t] = sum_d k[d] * x[t - d]``, where ``k`` is the
circular kernel of the ideal low-pass on ``max_len`` points (padding counts as
zero). One (L, L) lower-triangular Toeplitz matrix applies it.
"""

from __future__ import annotations

import torch
from torch import nn

from models.nn.batching import newest, pick
from models.nn.dropout import Dropout
from models.nn.sasrec import CausalSelfAttention

LN_EPS = 1e-12  # BSARec's TF-style LayerNorm epsilon
POSITIONS = ("absolute", "relative")
SCOPES = ("causal", "window")


def lowpass_kernel(window: int, cutoff: int) -> torch.Tensor:
    """(window,) circular impulse response of keeping the first ``cutoff // 2 + 1`` rfft modes."""
    keep = torch.zeros(window // 2 + 1)
    keep[: cutoff // 2 + 1] = 1.0
    return torch.fft.irfft(keep, n=window)


def window_circulant(kernel: torch.Tensor) -> torch.Tensor:
    """(L, L) matrix with ``C[t, s] = kernel[(t - s) mod L]``: the filter over a whole window."""
    n = len(kernel)
    lag = torch.arange(n).unsqueeze(1) - torch.arange(n).unsqueeze(0)
    return kernel[lag % n]


def causal_toeplitz(kernel: torch.Tensor) -> torch.Tensor:
    """(L, L) matrix with ``T[t, s] = kernel[t - s]`` for ``s <= t`` and 0 above the diagonal."""
    n = len(kernel)
    lag = torch.arange(n).unsqueeze(1) - torch.arange(n).unsqueeze(0)
    return torch.where(lag >= 0, kernel[lag.clamp(min=0)], torch.zeros(()))


class FrequencyFilter(nn.Module):
    """Low-pass plus ``beta``-scaled high-pass of each position's causal window, or (scope
    ``"window"``) of the whole window of real events, later ones included."""

    def __init__(
        self, dim: int, dropout: float, max_len: int, cutoff: int, scope: str = "causal"
    ) -> None:
        super().__init__()
        kernel = lowpass_kernel(max_len, cutoff)
        self.window = scope == "window"
        matrix = window_circulant(kernel) if self.window else causal_toeplitz(kernel)
        self.register_buffer("toeplitz", matrix)
        self.sqrt_beta = nn.Parameter(torch.randn(dim))
        self.drop = Dropout(dropout)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask`` (B, L, 1): 1 at real events; the window filter must not read padding."""
        width = x.shape[1]
        t: torch.Tensor = self.toeplitz  # type: ignore[assignment]
        src = x * mask if self.window and mask is not None else x
        low = torch.matmul(t[:width, :width], src)  # broadcasts over the batch
        mixed = low + self.sqrt_beta.square() * (x - low)
        return self.norm(x + self.drop(mixed))

    def last(self, x: torch.Tensor, mask: torch.Tensor | None, at: torch.Tensor) -> torch.Tensor:
        """(B, L, d), (B, L, 1), (B,) -> (B, d): :meth:`forward` at position ``at`` only."""
        width = x.shape[1]
        rows = self.toeplitz[at, :width]  # type: ignore[index]
        src = x * mask if self.window and mask is not None else x
        low = torch.bmm(rows.unsqueeze(1), src).squeeze(1)
        x_at = pick(x, at)
        mixed = low + self.sqrt_beta.square() * (x_at - low)
        return self.norm(x_at + self.drop(mixed))


class BSARecBlock(nn.Module):
    def __init__(
        self,
        dim: int,
        n_heads: int,
        dropout: float,
        max_len: int,
        alpha: float,
        cutoff: int,
        relative: bool = False,
        scope: str = "causal",
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.filter = FrequencyFilter(dim, dropout, max_len, cutoff, scope)
        self.attn = CausalSelfAttention(dim, n_heads, dropout, max_len if relative else 0)
        self.attn_norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.ffn_norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        attended = self.attn_norm(x + self.drop(self.attn(x)))
        h = attended
        if self.alpha:  # alpha = 0 skips the filter (and its parameters) entirely
            h = self.alpha * self.filter(x, mask) + (1.0 - self.alpha) * attended
        return self.ffn_norm(h + self.drop(self.ffn(h)))

    def last(self, x: torch.Tensor, mask: torch.Tensor | None, at: torch.Tensor) -> torch.Tensor:
        """(B, L, d), (B, L, 1), (B,) -> (B, d): :meth:`forward` at position ``at`` only."""
        attended = self.attn_norm(pick(x, at) + self.drop(self.attn.last(x, at)))
        h = attended
        if self.alpha:
            h = self.alpha * self.filter.last(x, mask, at) + (1.0 - self.alpha) * attended
        return self.ffn_norm(h + self.drop(self.ffn(h)))


class BSARecEncoder(nn.Module):
    """(B, L, d) event embeddings -> (B, L, d) states; position t depends on events <= t only.

    ``alpha = 0`` leaves attention alone: a post-norm SASRec, as in BSARec's baselines.
    ``positions="relative"`` drops the absolute position table for a learned attention
    bias per head and distance from the query; the filter is shift-invariant already,
    so every position is then computed exactly as the newest event of its own prefix.
    """

    def __init__(
        self,
        dim: int,
        n_layers: int,
        n_heads: int,
        dropout: float,
        max_len: int,
        alpha: float,
        cutoff: int,
        positions: str = "absolute",
        scope: str = "causal",
    ) -> None:
        super().__init__()
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, not {positions!r}")
        if scope not in SCOPES:
            raise ValueError(f"filter scope must be one of {SCOPES}, not {scope!r}")
        relative = positions == "relative"
        self.window = scope == "window"
        self.max_len = max_len
        self.positions = None if relative else nn.Embedding(max_len, dim)
        # Without a position vector the input LayerNorm would make each event's state
        # blind to its embedding's scale, and grad x input influences zero: one shared
        # vector keeps them meaningful.
        self.shift = nn.Parameter(0.02 * torch.randn(dim)) if relative else None
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.drop = Dropout(dropout)
        self.blocks = nn.ModuleList(
            BSARecBlock(dim, n_heads, dropout, max_len, alpha, cutoff, relative, scope)
            for _ in range(n_layers)
        )

    def _slots(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """(B, L) position indices: from the oldest event, or (window scope) counted back
        from the newest, which always sits in the last slot as in a left-padded window."""
        pos = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)
        if not self.window:
            return pos
        n = lengths if lengths is not None else torch.full_like(pos[:, 0], x.shape[1])
        return (pos + (self.max_len - n).unsqueeze(1)).clamp(0, self.max_len - 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h, mask = self._inputs(x, lengths)
        for block in self.blocks:
            h = block(h, mask)
        return h

    def last(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, L, d) -> (B, d): the state after each sequence's newest event, as
        :meth:`forward` gives it there; the last block runs at that position only."""
        h, mask = self._inputs(x, lengths)
        for block in self.blocks[:-1]:
            h = block(h, mask)
        final = self.blocks[-1]
        assert isinstance(final, BSARecBlock)
        return final.last(h, mask, newest(lengths))

    def _inputs(
        self, x: torch.Tensor, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The first block's input, and (window scope) the (B, L, 1) mask of real events."""
        if self.positions is not None:
            x = x + self.positions(self._slots(x, lengths))
        if self.shift is not None:
            x = x + self.shift
        mask = None
        if self.window and lengths is not None:
            real = torch.arange(x.shape[1], device=x.device) < lengths.unsqueeze(1)
            mask = real.unsqueeze(-1).to(x.dtype)
        return self.drop(self.norm(x)), mask
