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

from models.nn.sasrec import CausalSelfAttention

LN_EPS = 1e-12  # BSARec's TF-style LayerNorm epsilon
POSITIONS = ("absolute", "relative")


def lowpass_kernel(window: int, cutoff: int) -> torch.Tensor:
    """(window,) circular impulse response of keeping the first ``cutoff // 2 + 1`` rfft modes."""
    keep = torch.zeros(window // 2 + 1)
    keep[: cutoff // 2 + 1] = 1.0
    return torch.fft.irfft(keep, n=window)


def causal_toeplitz(kernel: torch.Tensor) -> torch.Tensor:
    """(L, L) matrix with ``T[t, s] = kernel[t - s]`` for ``s <= t`` and 0 above the diagonal."""
    n = len(kernel)
    lag = torch.arange(n).unsqueeze(1) - torch.arange(n).unsqueeze(0)
    return torch.where(lag >= 0, kernel[lag.clamp(min=0)], torch.zeros(()))


class FrequencyFilter(nn.Module):
    """Low-pass plus ``beta``-scaled high-pass of each position's causal window."""

    def __init__(self, dim: int, dropout: float, max_len: int, cutoff: int) -> None:
        super().__init__()
        self.register_buffer("toeplitz", causal_toeplitz(lowpass_kernel(max_len, cutoff)))
        self.sqrt_beta = nn.Parameter(torch.randn(dim))
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = x.shape[1]
        t: torch.Tensor = self.toeplitz  # type: ignore[assignment]
        low = torch.matmul(t[:width, :width], x)  # broadcasts over the batch
        mixed = low + self.sqrt_beta.square() * (x - low)
        return self.norm(x + self.drop(mixed))


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
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.filter = FrequencyFilter(dim, dropout, max_len, cutoff)
        self.attn = CausalSelfAttention(dim, n_heads, dropout, max_len if relative else 0)
        self.attn_norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.ffn_norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended = self.attn_norm(x + self.drop(self.attn(x)))
        h = attended
        if self.alpha:  # alpha = 0 skips the filter (and its parameters) entirely
            h = self.alpha * self.filter(x) + (1.0 - self.alpha) * attended
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
    ) -> None:
        super().__init__()
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, not {positions!r}")
        relative = positions == "relative"
        self.positions = None if relative else nn.Embedding(max_len, dim)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            BSARecBlock(dim, n_heads, dropout, max_len, alpha, cutoff, relative)
            for _ in range(n_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.positions is not None:
            pos = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)
            x = x + self.positions(pos)
        h = self.drop(self.norm(x))
        for block in self.blocks:
            h = block(h)
        return h
