"""Input embedding of one event: item + event type + time-gap bucket.

The unknown-item index embeds to zero, so an item the model never saw
contributes only its event type and timing instead of a random vector.
"""

from __future__ import annotations

import torch
from torch import nn

from models.nn.event_features import N_EVENT_INDICES, N_GAP_BUCKETS
from models.nn.vocab import PAD, UNK

INIT_STD = 0.02  # N(0, 0.02) init; PyTorch's default N(0, 1) made training start far off


def init_weights(module: nn.Module) -> None:
    """Small-normal init for every linear/embedding matrix, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class EventEmbedding(nn.Module):
    def __init__(self, n_indices: int, dim: int) -> None:
        super().__init__()
        self.items = nn.Embedding(n_indices, dim, padding_idx=PAD)
        self.events = nn.Embedding(N_EVENT_INDICES, dim, padding_idx=PAD)
        self.gaps = nn.Embedding(N_GAP_BUCKETS, dim, padding_idx=PAD)

    def forward(
        self, items: torch.Tensor, events: torch.Tensor, gaps: torch.Tensor
    ) -> torch.Tensor:
        """(B, L) indices -> (B, L, dim) content embeddings (no position)."""
        known = (items != UNK).unsqueeze(-1).to(self.items.weight.dtype)
        return self.items(items) * known + self.events(events) + self.gaps(gaps)
