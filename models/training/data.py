"""The leave-one-out split of sequence datasets and their encoding as indices.

Files are read by :mod:`models.datasets` (``load_sequences``).

>>> from models.datasets import parse_line
>>> seqs = [parse_line(x) for x in ["u1 1 2 3 4 5", "u2 7|click|10 8|purchase|20 9|view|30"]]
>>> seqs[0].items, seqs[1].events, seqs[1].ts
(['1', '2', '3', '4', '5'], ['click', 'purchase', 'view'], [10, 20, 30])
>>> split = leave_one_out(seqs)
>>> split.test[0].target, split.valid[0].target, split.train[0].items
('5', '4', ['1', '2', '3'])
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.datasets import UserSequence
from models.nn.event_features import event_index
from models.nn.vocab import ItemVocab


@dataclass(slots=True)
class Example:
    """An input history and the item that followed it."""

    history: UserSequence
    target: str


@dataclass(slots=True)
class Split:
    """Leave-one-out: train on all but the last two, validate on the second-last, test on last."""

    train: list[UserSequence]
    valid: list[Example]
    test: list[Example]


@dataclass(slots=True)
class EncodedSequence:
    """A sequence as arrays of indices, ready for batching."""

    items: np.ndarray  # int64 item indices
    events: np.ndarray  # int64 event indices
    ts: np.ndarray | None  # int64 ms, or None when the data has no time


def file_digest(path: str | Path) -> str:
    """Short sha256 of a dataset file, recorded so results name their exact data."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def leave_one_out(sequences: Sequence[UserSequence], min_len: int = 3) -> Split:
    """Split every user with at least ``min_len`` events (shorter ones have no training part)."""
    train, valid, test = [], [], []
    for s in sequences:
        if len(s) < min_len:
            continue
        train.append(s.head(-2))
        valid.append(Example(s.head(-2), s.items[-2]))
        test.append(Example(s.head(-1), s.items[-1]))
    return Split(train, valid, test)


def encode(seq: UserSequence, vocab: ItemVocab, use_events: bool) -> EncodedSequence:
    """Map a sequence to indices; unknown items become UNK, event types are dropped if unused."""
    items = np.fromiter((vocab.index(i) for i in seq.items), dtype=np.int64, count=len(seq))
    if use_events and seq.events is not None:
        events = np.fromiter((event_index(e) for e in seq.events), np.int64, count=len(seq))
    else:
        events = np.full(len(seq), event_index("?"), dtype=np.int64)
    ts = None if seq.ts is None else np.asarray(seq.ts, dtype=np.int64)
    return EncodedSequence(items, events, ts)


def catalogue_vocab(sequences: Sequence[UserSequence]) -> ItemVocab:
    """Vocabulary of every item in the file: the full-ranking catalogue of the benchmark."""
    return ItemVocab(item for s in sequences for item in s.items)


def has_events(sequences: Sequence[UserSequence]) -> bool:
    return any(s.events is not None for s in sequences)


def has_time(sequences: Sequence[UserSequence]) -> bool:
    return any(s.ts is not None for s in sequences)
