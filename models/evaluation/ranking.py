"""Leave-one-out full-ranking evaluation loop, shared by training and ``evaluate``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from models.evaluation.metrics import KS, RankingMetrics, target_ranks
from models.nn.batching import Batch, collate, length_buckets
from models.nn.vocab import FIRST, ItemVocab
from models.training.data import EncodedSequence, Example, encode

ScoreFn = Callable[[Batch], torch.Tensor]


def encode_examples(
    examples: Sequence[Example], vocab: ItemVocab, use_events: bool
) -> tuple[list[EncodedSequence], np.ndarray]:
    """Histories as encoded sequences and targets as output columns (-1: not in catalogue)."""
    inputs = [encode(e.history, vocab, use_events) for e in examples]
    targets = np.array([vocab.index(e.target) - FIRST for e in examples], dtype=np.int64)
    return inputs, targets


def evaluate_ranking(
    score_fns: dict[str, ScoreFn],
    inputs: Sequence[EncodedSequence],
    targets: np.ndarray,
    max_len: int,
    use_time: bool,
    batch_size: int = 512,
    ks: Sequence[int] = KS,
) -> dict[str, dict[str, float]]:
    """Rank every target against the whole catalogue under each scoring function."""
    metrics = {name: RankingMetrics(ks) for name in score_fns}
    lengths = [len(s.items) for s in inputs]
    for idx in length_buckets(lengths, batch_size, rng=None):
        batch = collate([inputs[i] for i in idx], max_len, use_time)
        t = torch.from_numpy(targets[idx])
        for name, fn in score_fns.items():
            scores = fn(batch)
            metrics[name].update(target_ranks(scores, t.to(scores.device)))
    return {name: m.result() for name, m in metrics.items()}
