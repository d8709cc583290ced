"""The scoring interface every streamrec model implements.

A scorer takes a batch of user behaviour sequences and returns, per user, the
top-K next items with scores and one influence weight per past event.

>>> from models.base import Interaction, Scored
>>> seq = [Interaction("i1", "click", 1_000), Interaction("i2", "purchase", 2_000)]
>>> s = Scored(items=[("i3", 0.7), ("i4", 0.3)], influences=[0.25, 0.75])
>>> s.top_item
'i3'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

EVENT_TYPES: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase")


class Interaction(NamedTuple):
    """One past behaviour of a user, oldest first in a sequence."""

    item_id: str
    event_type: str
    ts: int  # milliseconds since epoch


@dataclass(slots=True)
class Scored:
    """A scorer's answer for one user.

    ``items`` holds (item_id, score) pairs, best first. ``influences`` holds one
    weight per event of the input sequence, in the same order; they sum to 1
    (or the list is empty when the sequence was empty). ``purchase`` is
    P(the user's next event is a purchase), when something estimated it.
    """

    items: list[tuple[str, float]]
    influences: list[float] = field(default_factory=list)
    purchase: float | None = None

    @property
    def top_item(self) -> str | None:
        return self.items[0][0] if self.items else None


@runtime_checkable
class Scorer(Protocol):
    """Scores the next items for a batch of user sequences."""

    name: str

    @property
    def version(self) -> str: ...

    def score(self, sequences: Sequence[Sequence[Interaction]], k: int) -> list[Scored]:
        """Return one :class:`Scored` per input sequence, in input order."""
        ...


@runtime_checkable
class Learner(Protocol):
    """Learns online from each newly applied event: the item before it, its item, the
    input partition it was read from (where a partitioned store writes its counts) and
    its input offset (a store may use it to count a replayed event once)."""

    def learn_one(
        self, prev_item: str | None, item: str, partition: int = 0, offset: int | None = None
    ) -> None: ...


def normalise(weights: Sequence[float]) -> list[float]:
    """Scale non-negative weights to sum to 1; equal shares when all are zero.

    >>> normalise([1.0, 3.0])
    [0.25, 0.75]
    >>> normalise([0.0, 0.0])
    [0.5, 0.5]
    """
    if not weights:
        return []
    total = float(sum(weights))
    if total <= 0.0:
        return [1.0 / len(weights)] * len(weights)
    return [w / total for w in weights]
