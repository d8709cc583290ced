"""Every prefix as its own sample: training for the window-scope BSARec filter.

The window filter lets each event's state read later events of the same window, so
one pass over a whole sequence would show position t its own future. Each target is
instead predicted from its prefix alone, at the prefix's newest event, as the
published BSARec harness trains. Prefixes are grouped by length (little padding),
so an epoch costs the sum of prefix lengths in encoder work; the catalogue-wide
softmax, the larger cost, runs once per target as in the one-pass loss.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from models.training.data import EncodedSequence


def prefix_index(
    inputs: list[EncodedSequence], targets: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sequence, target column, prefix end) of every real target. Target rows cover the
    last ``len(row)`` inputs, so column j of row i follows the input prefix ending there."""
    rows, cols, ends = [], [], []
    for i, (seq, t) in enumerate(zip(inputs, targets, strict=True)):
        (j,) = np.nonzero(t >= 0)
        rows.append(np.full(len(j), i, dtype=np.int64))
        cols.append(j.astype(np.int64))
        ends.append(len(seq.items) - len(t) + 1 + j.astype(np.int64))
    if not rows:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(ends)


def prefix(seq: EncodedSequence, end: int, max_len: int) -> EncodedSequence:
    """The first ``end`` events of ``seq``, cut to ``max_len`` plus one (its true time gap)."""
    start = max(0, end - max_len - 1)
    ts = None if seq.ts is None else seq.ts[start:end]
    return EncodedSequence(seq.items[start:end], seq.events[start:end], ts)


def prefix_batches(
    ends: np.ndarray, max_len: int, batch_size: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Sample indices in runs of the length order (little padding), batches in random order."""
    lengths = np.minimum(ends, max_len)
    order = np.lexsort((rng.random(len(ends)), lengths))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(chunks)
    yield from chunks
