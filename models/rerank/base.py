"""The adjuster family: what every online re-ranker of candidates implements.

An adjuster turns each candidate of a list into its own compact description
``x`` (:meth:`Adjuster.describe`, a tuple of numbers: the feedback join keeps
these until the label arrives), predicts P(engagement) from it and learns from
labelled ones, river-style (``learn_one`` / ``predict_one``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from models.rerank.features import ListContext

X = tuple[float, ...]


class Adjuster(abc.ABC):
    name: str
    examples: int
    #: True when :meth:`describe` returns shared tuple objects (few distinct ones):
    #: the feedback join then keeps references instead of packing them.
    shared_descriptions: bool = False

    @abc.abstractmethod
    def describe(self, items: Sequence[str], ctx: ListContext) -> list[X]:
        """One ``x`` per candidate of a list."""

    @abc.abstractmethod
    def learn_one(self, x: X, y: bool, w: float = 1.0) -> None:
        """Learn that the candidate ``x`` was engaged with (``y``), with weight ``w``."""

    @abc.abstractmethod
    def predict_one(self, x: X) -> float:
        """P(engagement) of the candidate ``x``."""

    def predict_many(self, xs: Sequence[X]) -> list[float]:
        return [self.predict_one(x) for x in xs]

    def learn_many(self, examples: Sequence[tuple[X, bool, float]]) -> None:
        """Learn ``(x, y, w)`` examples in order (a block of them at once)."""
        for x, y, w in examples:
            self.learn_one(x, y, w)

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget everything learned (after a drift in the loss)."""
