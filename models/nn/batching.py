"""Turn encoded sequences into right-padded tensors.

Right padding keeps every real position's causal context free of padding, so
no key-padding mask is needed (and PyTorch's NaN-prone fast path is never hit).
Sequences longer than ``max_len`` keep their most recent events. Batches are
padded only to their own longest sequence, which matters here: the median
benchmark sequence has 6 events while ``max_len`` is 50.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.nn.event_features import PAD, gap_buckets
from models.training.data import EncodedSequence


@dataclass(slots=True)
class Batch:
    items: torch.Tensor  # (B, L) item indices, 0 = padding
    events: torch.Tensor  # (B, L)
    gaps: torch.Tensor  # (B, L) gap buckets
    lengths: torch.Tensor  # (B,) number of real positions, at least 1

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        tensors = (self.items, self.events, self.gaps, self.lengths)
        return Batch(*(t.to(device, non_blocking=non_blocking) for t in tensors))

    def pin_memory(self) -> Batch:
        """Page-locked copies, so a CUDA upload can run asynchronously."""
        return Batch(*(t.pin_memory() for t in (self.items, self.events, self.gaps, self.lengths)))

    @property
    def mask(self) -> torch.Tensor:
        """(B, L) True at real positions."""
        return self.items != PAD

    def last_items(self) -> torch.Tensor:
        """(B,) each sequence's newest item."""
        return self.items.gather(1, newest(self.lengths).unsqueeze(1)).squeeze(1)


def newest(lengths: torch.Tensor) -> torch.Tensor:
    """(B,) each sequence's newest position (right padding: ``length - 1``)."""
    return (lengths - 1).clamp(min=0)


def pick(x: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    """(B, L, d), (B,) -> (B, d): each row's vector at position ``at``."""
    return x.gather(1, at.view(-1, 1, 1).expand(-1, 1, x.shape[-1])).squeeze(1)


def collate(
    seqs: Sequence[EncodedSequence], max_len: int, use_time: bool, width: int | None = None
) -> Batch:
    """Right-pad the last ``max_len`` events of each sequence, to ``width`` if given.

    Empty sequences get one padding position and length 1 so that "the last
    position" always exists; callers treat their output as uninformed.
    """
    lengths = [max(1, min(len(s.items), max_len)) for s in seqs]
    longest = max(lengths) if lengths else 1
    if width is None or width < longest:
        width = longest
    items = np.zeros((len(seqs), width), dtype=np.int64)
    events = np.zeros_like(items)
    gaps = np.zeros_like(items)
    for row, s in enumerate(seqs):
        n = min(len(s.items), max_len)
        if n == 0:
            continue
        # Gaps are computed on the full sequence so truncation keeps the true first gap.
        timed = use_time and s.ts is not None
        g = gap_buckets(s.ts if s.ts is not None else np.zeros(len(s.items)), timed)
        items[row, :n] = s.items[-n:]
        events[row, :n] = s.events[-n:]
        gaps[row, :n] = g[-n:]
    return Batch(
        torch.from_numpy(items),
        torch.from_numpy(events),
        torch.from_numpy(gaps),
        torch.tensor(lengths, dtype=torch.int64),
    )


def length_buckets(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator | None
) -> Iterator[np.ndarray]:
    """Yield index batches of similar length (little padding), in random order if ``rng``.

    Sorting by length with a random tie-break, chunking, then shuffling the chunks
    keeps batches tight while still varying their composition across epochs.
    """
    n = len(lengths)
    if rng is None:
        order = np.argsort(np.asarray(lengths), kind="stable")
    else:
        order = np.lexsort((rng.random(n), np.asarray(lengths)))
    chunks = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if rng is not None:
        rng.shuffle(chunks)
    yield from chunks
