"""Full-catalogue scoring: the network's heads blended with transition signals.

Shared by evaluation, the influence methods and the serving scorer, so all
three rank with exactly the same formula (:class:`models.nn.config.BlendConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.nn.batching import Batch
from models.nn.config import BlendConfig
from models.nn.heads import blend, seen_mask
from models.nn.network import SequenceRecommender
from models.nn.transitions import Transitions


@dataclass
class Predictor:
    network: SequenceRecommender
    transitions: Transitions | None
    device: torch.device

    @property
    def weights(self) -> BlendConfig:
        return self.network.config.blend

    def last_items(self, batch: Batch) -> np.ndarray:
        return batch.last_items().cpu().numpy()

    def transition_logp(self, batch: Batch, alpha: float | None = None) -> torch.Tensor | None:
        if self.transitions is None:
            return None
        a = self.weights.transition_alpha if alpha is None else alpha
        logp = self.transitions.log_prob(self.last_items(batch), a)
        return torch.from_numpy(logp).to(self.device)

    def score_from_inputs(
        self, x: torch.Tensor, batch: Batch, transition_logp: torch.Tensor | None
    ) -> torch.Tensor:
        """Differentiable in ``x`` (the (B, L, d) event inputs): (B, n_items) blended scores."""
        net = self.network
        h = net.encode_last(x, batch.lengths)
        purchase = net.purchase_logits(h) if net.config.purchase_trained else None
        return blend(net.next_logits(h), purchase, transition_logp, self.weights, batch.items)

    @torch.no_grad()
    def score(self, batch: Batch) -> torch.Tensor:
        """(B, n_items) blended scores, eval mode, no gradients."""
        self.network.eval()
        batch = batch.to(self.device)
        x = self.network.content(batch)
        return self.score_from_inputs(x, batch, self.transition_logp(batch))

    @torch.no_grad()
    def network_log_probs(self, batch: Batch) -> torch.Tensor:
        """(B, n_items) log P(next = j) from the next-item head alone."""
        self.network.eval()
        batch = batch.to(self.device)
        h = self.network.newest_state(batch)
        return torch.log_softmax(self.network.next_logits(h), dim=-1)

    @torch.no_grad()
    def network_unseen(self, batch: Batch) -> torch.Tensor:
        """(B, n_items) the network alone with the blend's ``seen`` demotion (no transitions)."""
        scores = self.network_log_probs(batch)
        if self.weights.seen:
            items = batch.items.to(self.device)
            scores -= self.weights.seen * seen_mask(items, scores.shape[-1])
        return scores
