"""Non-neural baselines scored by the same evaluation code as the networks.

- popularity: training-part item counts, the same ranking for everyone;
- Markov-1: P(next | last item) from training transitions, ties by popularity.
"""

from __future__ import annotations

import torch

from models.nn.batching import Batch
from models.nn.transitions import Transitions


def popularity_scores(transitions: Transitions, batch: Batch) -> torch.Tensor:
    row = torch.from_numpy(transitions.log_pop.astype("float32"))
    return row.unsqueeze(0).expand(batch.items.shape[0], -1)


def markov_scores(transitions: Transitions, batch: Batch) -> torch.Tensor:
    last = batch.last_items().numpy()
    # alpha = 1 ranks exactly by transition count, then popularity (see transitions.py).
    return torch.from_numpy(transitions.log_prob(last, alpha=1.0))
