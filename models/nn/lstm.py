"""GRU4Rec-style recurrent encoder (Hidasi et al., 2016) with an LSTM or GRU cell.

Recurrence is causal by construction, and on right-padded input the trailing
padding never reaches a real position, so no packing is needed.
"""

from __future__ import annotations

import torch
from torch import nn

from models.nn.dropout import Dropout


class RNNEncoder(nn.Module):
    """(B, L, d) event embeddings -> (B, L, d) states."""

    def __init__(self, dim: int, n_layers: int, dropout: float, cell: str = "lstm") -> None:
        super().__init__()
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.drop = Dropout(dropout)
        between = dropout if n_layers > 1 else 0.0  # torch warns about dropout on one layer
        self.rnn = rnn_cls(dim, dim, num_layers=n_layers, batch_first=True, dropout=between)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.drop(x))
        return self.norm(self.drop(h))
