"""Growing a trained network's item vocabulary for items first seen in the stream.

Old items keep their index, embedding row and head biases, so a grown network
scores every old item exactly as before until it is trained again. A new item's
embedding row starts as a fresh row does at initialisation, small and random
(N(0, 0.02)), and its head biases at the old items' median: an unproven item
scores about the same in every context, neither leading nor trailing the lists,
until fine-tuning or its transition counts place it. (Rows started at the old
rows' mean were tried first: thousands of near-identical rows then scored alike
and crowded the lists together.) The Markov-1 transition counts grow with zero
rows and columns.

>>> from models.nn.config import ModelConfig
>>> net = SequenceRecommender(ModelConfig(arch="gru", n_items=2, dim=4, n_layers=1))
>>> grown, vocab = grow(net, ItemVocab(["a", "b"]), ["c", "a"])
>>> vocab.to_list(), grown.config.n_items, tuple(grown.item_table.shape)
(['a', 'b', 'c'], 3, (5, 4))
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp
import torch

from models.nn.embedding import INIT_STD
from models.nn.network import SequenceRecommender
from models.nn.transitions import Transitions
from models.nn.vocab import FIRST, ItemVocab


def grown_vocab(vocab: ItemVocab, items: Iterable[str]) -> ItemVocab:
    """The old items in their order, then the new ones in first-seen order."""
    return ItemVocab([*vocab.to_list(), *items])


def _new_rows(
    old: torch.Tensor, n_new: int, noise: float, generator: torch.Generator
) -> torch.Tensor:
    """``n_new`` rows shaped like ``old``'s: N(0, noise) (2-D), or the old median (1-D)."""
    if old.dim() == 1:
        centre = old.median() if len(old) else torch.zeros((), dtype=old.dtype)
        return centre.expand(n_new).clone()
    return (torch.randn(n_new, old.shape[1], generator=generator) * noise).to(old.dtype)


def grow(
    network: SequenceRecommender, vocab: ItemVocab, items: Iterable[str], seed: int = 0
) -> tuple[SequenceRecommender, ItemVocab]:
    """A copy of ``network`` over the vocabulary grown by ``items`` (known ones ignored)."""
    new_vocab = grown_vocab(vocab, items)
    n_old, n_new = len(vocab), len(new_vocab) - len(vocab)
    config = copy.deepcopy(network.config)
    config.n_items = len(new_vocab)
    grown = SequenceRecommender(config)
    state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    table = state["embed.items.weight"]
    state["embed.items.weight"] = torch.cat(
        [table, _new_rows(table[FIRST : FIRST + n_old], n_new, INIT_STD, g)]
    )
    for key in ("next_head.bias", "purchase_head.bias"):
        state[key] = torch.cat([state[key], _new_rows(state[key], n_new, 0.0, g)])
    grown.load_state_dict(state)
    device = next(network.parameters()).device
    return grown.to(device), new_vocab


def grow_transitions(transitions: Transitions, n_items: int) -> Transitions:
    """The same counts over ``n_items`` items (new items: no transitions, no occurrences)."""
    counts = transitions.counts.tocoo()
    shape = (FIRST + n_items, n_items)
    grown = sp.coo_matrix((counts.data, (counts.row, counts.col)), shape=shape).tocsr()
    item_counts = np.zeros(n_items, dtype=np.float64)
    item_counts[: len(transitions.item_counts)] = transitions.item_counts
    return Transitions(grown, item_counts)


def add_counts(
    transitions: Transitions, pairs: Iterable[tuple[int, int]], items: Iterable[int]
) -> Transitions:
    """``transitions`` plus counts of new (previous index, next index) pairs and occurrences."""
    n_items = len(transitions.item_counts)
    rows, cols = [], []
    for prev, nxt in pairs:
        if prev >= FIRST and nxt >= FIRST:
            rows.append(prev)
            cols.append(nxt - FIRST)
    extra = sp.coo_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=transitions.counts.shape
    ).tocsr()
    item_counts = transitions.item_counts.copy()
    seen = np.fromiter((i - FIRST for i in items if i >= FIRST), dtype=np.int64)
    item_counts += np.bincount(seen, minlength=n_items)[:n_items]
    return Transitions((transitions.counts + extra).tocsr(), item_counts)
