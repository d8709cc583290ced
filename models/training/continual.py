"""One round of continual training: fine-tune a candidate on recent events, then gate it.

A round starts from the model now served (or, with none yet, from a fresh
network), grows its vocabulary for items first seen in the training events
(:mod:`models.training.grow`), adds the transition counts of the events that
arrived since that model was made, and fine-tunes the network for a few epochs
on the training sequences with the ordinary next-item loss
(:func:`models.training.train.train_epoch`). Candidate and current model are
then ranked on the held-out events, the most recent ones, which neither saw
(next-item HR@10 and NDCG@10 over the full catalogue, with each model's own
blend, as served). The candidate passes the gate unless its NDCG@10 is lower
than the current model's by more than ``margin``. With no current model, the
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
from models.evaluation.ranking import ScoreFn, encode_examples, evaluate_ranking
from models.nn.config import ModelConfig
from models.nn.network import SequenceRecommender
from models.nn.predictor import Predictor
from models.nn.transitions import Transitions
from models.nn.vocab import FIRST, ItemVocab
from models.serving.checkpoint import Checkpoint
from models.training.data import EncodedSequence, Example, encode
from models.training.grow import add_counts, grow, grow_transitions
from models.training.train import (
    TrainConfig,
    TrainingSet,
    seed_everything,
    train_epoch,
    training_set,
)

GATE_METRIC = "NDCG@10"


@dataclass
class ContinualConfig:
    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0
    margin: float = 0.005  # absolute NDCG@10 the candidate may lose and still pass
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
    examples: int  # training positions
    new_items: int
    seconds: float
    loss: float

    def report(self) -> dict[str, Any]:
        keys = ("reference", "promote", "examples", "new_items", "seconds", "loss")
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


def holdout_metrics(
    net: SequenceRecommender,
    vocab: ItemVocab,
    transitions: Transitions | None,
    holdout: Sequence[Example],
    device: torch.device,
) -> dict[str, float]:
    """HR/NDCG of the blended model over the held-out events (unknown targets: misses)."""
    inputs, targets = encode_examples(holdout, vocab, net.config.use_events)
    score: ScoreFn = Predictor(net, transitions, device).score
    mc = net.config
    return evaluate_ranking({"m": score}, inputs, targets, mc.max_len, mc.use_time)["m"]


def popularity_metrics(
    vocab: ItemVocab, train: Sequence[UserSequence], holdout: Sequence[Example]
) -> dict[str, float]:
    counts = np.zeros(len(vocab), dtype=np.float32)
    for s in train:
        for i in s.items:
            counts[vocab.index(i) - FIRST] += 1
    pop = torch.from_numpy(counts)
    inputs, targets = encode_examples(holdout, vocab, False)
    score: ScoreFn = lambda b: pop.expand(len(b.lengths), -1)  # noqa: E731
    return evaluate_ranking({"pop": score}, inputs, targets, 1, False)["pop"]


def run_round(
    current: Checkpoint | None, data: RoundData, cfg: ContinualConfig, device: torch.device
) -> RoundResult:
    """Fine-tune a candidate from ``current`` on ``data.train`` and judge it on ``data.holdout``."""
    t0 = time.monotonic()
    seed_everything(cfg.seed)
    net, vocab, transitions, n_new = _start(current, data, cfg, device)
    seqs = [encode(s, vocab, net.config.use_events) for s in data.train]
    examples, loss = fine_tune(net, seqs, cfg, device)
    cand = holdout_metrics(net, vocab, transitions, data.holdout, device)
    if current is not None:
        ref = holdout_metrics(
            current.network, current.vocab, current.transitions, data.holdout, device
        )
        reference = "current"
    else:
        ref, reference = popularity_metrics(vocab, data.train, data.holdout), "popularity"
    promote = (
        bool(data.holdout) and examples > 0 and cand[GATE_METRIC] >= ref[GATE_METRIC] - cfg.margin
    )
    return RoundResult(
        net,
        vocab,
        transitions,
        cand,
        ref,
        reference,
        promote,
        examples,
        n_new,
        time.monotonic() - t0,
        loss,
    )
