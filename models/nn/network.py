"""The sequence recommender network: event embedding -> encoder -> two heads."""

from __future__ import annotations

import torch
from torch import nn

from models.nn.batching import Batch, newest, pick
from models.nn.config import ModelConfig
from models.nn.embedding import EventEmbedding, init_weights
from models.nn.frequency import BSARecEncoder
from models.nn.heads import NextItemHead, PurchaseHead
from models.nn.lstm import RNNEncoder
from models.nn.sasrec import SASRecEncoder
from models.nn.vocab import FIRST


class SequenceRecommender(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = EventEmbedding(config.n_items + FIRST, config.dim)
        if config.arch == "transformer":
            self.encoder: nn.Module = SASRecEncoder(
                config.dim, config.n_layers, config.n_heads, config.dropout, config.max_len
            )
        elif config.arch == "bsarec":
            self.encoder = BSARecEncoder(
                config.dim,
                config.n_layers,
                config.n_heads,
                config.dropout,
                config.max_len,
                config.alpha,
                config.cutoff,
                config.positions,
                config.filter_scope,
            )
        elif config.arch in ("lstm", "gru"):
            self.encoder = RNNEncoder(config.dim, config.n_layers, config.dropout, config.arch)
        else:
            raise ValueError(f"unknown arch {config.arch!r}")
        self.next_head = NextItemHead(config.n_items)
        self.purchase_head = PurchaseHead(config.dim, config.n_items)
        init_weights(self)

    @property
    def item_table(self) -> torch.Tensor:
        return self.embed.items.weight

    def content(self, batch: Batch) -> torch.Tensor:
        """(B, L, d) per-event inputs; influence methods differentiate with respect to these."""
        return self.embed(batch.items, batch.events, batch.gaps)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, d) inputs -> (B, L, d) states; state t summarises events 0..t (with the
        window-scope filter, only the last real state is meaningful; ``lengths`` required)."""
        if isinstance(self.encoder, BSARecEncoder):
            return self.encoder(x, lengths)
        return self.encoder(x)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.encode(self.content(batch), batch.lengths)

    def encode_last(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, L, d) inputs -> (B, d): :meth:`last_state` of :meth:`encode`, computed
        for the newest events only where the encoder can (the attention encoders'
        last block: their feed-forward at one position, not at every one)."""
        if isinstance(self.encoder, SASRecEncoder | BSARecEncoder) and len(self.encoder.blocks):
            return self.encoder.last(x, lengths)
        return self.last_state(self.encode(x, lengths), lengths)

    def newest_state(self, batch: Batch) -> torch.Tensor:
        """(B, d): the state after each sequence's newest event (:meth:`encode_last`)."""
        return self.encode_last(self.content(batch), batch.lengths)

    @staticmethod
    def last_state(states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, L, d) -> (B, d): the state after each sequence's most recent event."""
        return pick(states, newest(lengths))

    def next_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.next_head(h, self.item_table)

    def next_loss(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean full-softmax cross-entropy of (N, d) states against (N,) real item columns."""
        return self.next_head.loss(h, self.item_table, targets)

    def purchase_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.purchase_head(h, self.item_table)
