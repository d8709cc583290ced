"""One round of continual training: fine-tune a candidate on recent events, then gate it.

A round starts from the model now served (or, with none yet, from a fresh
network), grows its vocabulary for items first seen in the training events
(:mod:`models.training.grow`), adds the transition counts of the events that
arrived since that model was made, and fine-tunes the network for a few epochs
on the training sequences with the ordinary next-item loss
(:func:`models.training.train.train_epoch`). Candidate and current model are
then ranked on the held-out events, the most recent ones, which neither saw
(next-item HR@10 and NDCG@10 over the full catalogue, with each model's own
blend, as served). The candidate passes the gate
(:mod:`models.training.gate`) unless its per-event NDCG@10 is lower than the
reference's by more than the holdout's noise and a relative margin; the
reference is the current model and, when given, an older ancestor too (the
anchor), so small steps down cannot add up. With no current model, the
reference is the training events' popularity ranking, so a first model must at
least rank like "most popular".

``shuffle_labels`` trains on permuted next items, and counts transitions on the
window with its items permuted (the old counts dropped): a deliberately broken
candidate, to check that the gate rejects it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from models.datasets import UserSequence
from models.evaluation.metrics import RankingMetrics, target_ranks
from models.evaluation.ranking import ScoreFn, encode_examples
from models.nn.batching import collate, length_buckets
from models.nn.config import ModelConfig
from models.nn.network import SequenceRecommender
from models.nn.predictor import Predictor
from models.nn.transitions import Transitions
from models.nn.vocab import FIRST, ItemVocab
from models.serving.checkpoint import Checkpoint
from models.training.data import EncodedSequence, Example, encode
from models.training.gate import ndcg_gains, non_inferior
from models.training.grow import add_counts, grow, grow_transitions
from models.training.train import (
    TrainConfig,
    TrainingSet,
    seed_everything,
    train_epoch,
    training_set,
)


@dataclass
class ContinualConfig:
    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0
    rel_margin: float = 0.05  # share of the reference's NDCG@10 the candidate may lose
    z: float = 1.64  # ... or this many standard errors of the paired difference
    shuffle_labels: bool = False
    scratch: ModelConfig = field(default_factory=lambda: ModelConfig(dim=32, n_layers=1))


@dataclass
class RoundData:
    """What one round learns from and is judged on (item ids as strings)."""

    train: list[UserSequence]  # each user's window before the holdout
    holdout: list[Example]  # the most recent events, each with the user's history before it
    fresh_pairs: list[tuple[str | None, str]]  # (previous item, item) not yet in the counts


@dataclass
class RoundResult:
    network: SequenceRecommender
    vocab: ItemVocab
    transitions: Transitions | None
    candidate: dict[str, float]
    current: dict[str, float]
    reference: str  # "current" or "popularity"
    promote: bool
    gate: dict[str, Any]  # the verdict against the reference and against the anchor
    examples: int  # training positions
    new_items: int
    seconds: float
    loss: float

    def report(self) -> dict[str, Any]:
        keys = ("reference", "promote", "gate", "examples", "new_items", "seconds", "loss")
        out: dict[str, Any] = {k: getattr(self, k) for k in keys}
        return {**out, "candidate": self.candidate, "current": self.current}


def _start(
    current: Checkpoint | None, data: RoundData, cfg: ContinualConfig, device: torch.device
) -> tuple[SequenceRecommender, ItemVocab, Transitions | None, int]:
    """The network to fine-tune, its grown vocabulary and transitions, and the new items."""
    items = [i for s in data.train for i in s.items]
    if current is None:
        vocab = ItemVocab(items)
        mc = ModelConfig.from_dict(cfg.scratch.to_dict())
        mc.n_items, mc.use_events, mc.use_time = len(vocab), True, True
        mc.purchase_trained = _has_both_outcomes(data.train)
        net = SequenceRecommender(mc).to(device)
        fitted = Transitions.fit(
            (encode(s, vocab, True).items for s in data.train), vocab.n_indices
        )
        return net, vocab, fitted, len(vocab)
    fresh = [i for i in dict.fromkeys(items) if current.vocab.index(i) < FIRST]
    net, vocab = grow(current.network, current.vocab, fresh, cfg.seed)
    transitions = current.transitions
    if transitions is not None and cfg.shuffle_labels:
        transitions = _shuffled_transitions(data.train, vocab, cfg.seed)
    elif transitions is not None:
        pairs = data.fresh_pairs
        transitions = add_counts(
            grow_transitions(transitions, len(vocab)),
            ((vocab.index(a) if a is not None else 0, vocab.index(b)) for a, b in pairs),
            (vocab.index(b) for _, b in pairs),
        )
    return net.to(device), vocab, transitions, len(fresh)


def _shuffled_transitions(
    train: Sequence[UserSequence], vocab: ItemVocab, seed: int
) -> Transitions:
    """Counts of the training events with their items permuted across the whole window."""
    seqs = [encode(s, vocab, False).items for s in train]
    flat = np.random.default_rng(seed).permutation(np.concatenate(seqs) if seqs else [])
    cuts = np.cumsum([len(x) for x in seqs])[:-1]
    return Transitions.fit(np.split(flat.astype(np.int64), cuts), vocab.n_indices)


def _has_both_outcomes(train: Sequence[UserSequence]) -> bool:
    events = [e for s in train for e in (s.events or [])]
    return 0 < sum(e == "purchase" for e in events) < len(events)


def _shuffled(data: TrainingSet, seed: int) -> TrainingSet:
    """The same positions with their next items permuted across the whole set."""
    flat = np.concatenate(data.targets) if data.targets else np.zeros(0, np.int64)
    flat = np.random.default_rng(seed).permutation(flat)
    cuts = np.cumsum([len(t) for t in data.targets])[:-1]
    return TrainingSet(data.inputs, list(np.split(flat, cuts)), data.target_events)


def fine_tune(
    net: SequenceRecommender,
    seqs: list[EncodedSequence],
    cfg: ContinualConfig,
    device: torch.device,
) -> tuple[int, float]:
    """Train ``net`` in place for ``cfg.epochs``; return the training positions and last loss."""
    data = training_set(seqs, net.config.max_len)
    if cfg.shuffle_labels:
        data = _shuffled(data, cfg.seed)
    examples = int(sum(int((t >= 0).sum()) for t in data.targets))
    if examples == 0:
        return 0, float("nan")
    if net.config.purchase_trained and not data.target_events:
        net.config.purchase_trained = False
    tc = TrainConfig(lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    loss = float("nan")
    for epoch in range(cfg.epochs):
        loss = train_epoch(net, data, opt, tc, rng, device, f"fine-tune {epoch + 1}")
    net.eval()
    return examples, loss


def holdout_ranks(
    net: SequenceRecommender,
    vocab: ItemVocab,
    transitions: Transitions | None,
    holdout: Sequence[Example],
    device: torch.device,
) -> np.ndarray:
    """0-based rank of each held-out target under the blended model (unknown target: a miss)."""
    inputs, targets = encode_examples(holdout, vocab, net.config.use_events)
    score: ScoreFn = Predictor(net, transitions, device).score
    return _ranks(score, inputs, targets, net.config.max_len, net.config.use_time)


def _ranks(
    score: ScoreFn, inputs: Sequence[Any], targets: np.ndarray, max_len: int, use_time: bool
) -> np.ndarray:
    out = np.zeros(len(targets), dtype=np.int64)
    for idx in length_buckets([len(s.items) for s in inputs], 512, rng=None):
        batch = collate([inputs[i] for i in idx], max_len, use_time)
        scores = score(batch)
        t = torch.from_numpy(targets[idx]).to(scores.device)
        out[idx] = target_ranks(scores, t).cpu().numpy()
    return out


def summary(ranks: np.ndarray) -> dict[str, float]:
    """HR@K, NDCG@K, MRR and the event count, as :class:`RankingMetrics` reports them."""
    m = RankingMetrics()
    m.update(torch.from_numpy(ranks))
    return m.result()


def popularity_ranks(
    vocab: ItemVocab, train: Sequence[UserSequence], holdout: Sequence[Example]
) -> np.ndarray:
    counts = np.zeros(len(vocab), dtype=np.float32)
    for s in train:
        for i in s.items:
            counts[vocab.index(i) - FIRST] += 1
    pop = torch.from_numpy(counts)
    inputs, targets = encode_examples(holdout, vocab, False)
    score: ScoreFn = lambda b: pop.expand(len(b.lengths), -1)  # noqa: E731
    return _ranks(score, inputs, targets, 1, False)


def _judge(
    cand: np.ndarray, ref: np.ndarray, users: list[str], cfg: ContinualConfig
) -> dict[str, Any]:
    return non_inferior(ndcg_gains(cand), ndcg_gains(ref), users, cfg.rel_margin, cfg.z).to_dict()


def run_round(
    current: Checkpoint | None,
    data: RoundData,
    cfg: ContinualConfig,
    device: torch.device,
    anchor: Checkpoint | None = None,
) -> RoundResult:
    """Fine-tune a candidate from ``current`` on ``data.train`` and judge it on ``data.holdout``.

    ``anchor``, an ancestor of ``current``, is a second reference the candidate must not
    be worse than (beyond noise), so a chain of small losses cannot drift far.
    """
    t0 = time.monotonic()
    seed_everything(cfg.seed)
    net, vocab, transitions, n_new = _start(current, data, cfg, device)
    seqs = [encode(s, vocab, net.config.use_events) for s in data.train]
    examples, loss = fine_tune(net, seqs, cfg, device)
    users = [e.history.user for e in data.holdout]
    cand = holdout_ranks(net, vocab, transitions, data.holdout, device)
    if current is not None:
        ref = holdout_ranks(
            current.network, current.vocab, current.transitions, data.holdout, device
        )
        reference = "current"
    else:
        ref, reference = popularity_ranks(vocab, data.train, data.holdout), "popularity"
    gate = {reference: _judge(cand, ref, users, cfg)}
    if anchor is not None and current is not None and anchor.version != current.version:
        held = holdout_ranks(anchor.network, anchor.vocab, anchor.transitions, data.holdout, device)
        gate["anchor"] = {"version": anchor.version, **_judge(cand, held, users, cfg)}
    passed = all(v["passed"] for v in gate.values())
    promote = bool(data.holdout) and examples > 0 and passed
    return RoundResult(
        net,
        vocab,
        transitions,
        summary(cand),
        summary(ref),
        reference,
        promote,
        gate,
        examples,
        n_new,
        time.monotonic() - t0,
        loss,
    )
