"""The slot adjuster: online engagement rates per candidate *slot*, shrunk level by level.

A candidate's slot is where it came from: its rank in the scorer's list, its
recency rank in the user's own history, whether it is trending now, and, level
by level, more of its features in coarse buckets (the strongest event type the
user had with it, how often and how long ago; the item's popularity and idle
time). For each slot it keeps the (type-weighted) rate at which users engaged
with such candidates: a river ``stats.Mean`` per slot. A slot seen rarely is
shrunk toward its parent, one level coarser (``m`` pseudo-examples of the
parent's rate), so a deep level only matters where the stream has shown it.

It is a Bernoulli bandit over slots, used greedily: ranking candidates by these
rates learns, online, how to interleave the scorer's list with the user's own
recent items and the trending ones, which is what the fixed hand-made blends do
with one hand-picked order. Measured against a logistic regression over every
feature (``river-logreg``, :mod:`stream_app.adjust.adjuster`): see the README.

>>> s = SlotAdjuster(levels=1)
>>> first = {"base_rrank": 0.0, "mine_rrank": 0.5, "trending": 0.0}  # my last item
>>> top = {"base_rrank": 1.0, "mine_rrank": 0.0, "trending": 0.0}  # scorer's top
>>> for _ in range(200):
...     s.learn_one(first, True); s.learn_one(top, False)
>>> s.predict_one(first) > 0.9 > 0.1 > s.predict_one(top)
True
>>> s.examples
400
"""

from __future__ import annotations

import math
from collections.abc import Callable

from river import stats

Key = tuple[object, ...]
CAP = 11  # ranks past 10 share one slot


def _rank(rrank: float) -> int:
    """The rank back from its reciprocal feature ``1 / (1 + rank)``; -1 for 'not ranked'."""
    return min(CAP, round(1.0 / rrank - 1.0)) if rrank > 0 else -1


def _bucket(value: float, width: float, top: int) -> int:
    return min(top, int(value / width))


def level0(x: dict[str, float]) -> Key:
    return (_rank(x["base_rrank"]), _rank(x["mine_rrank"]), x["trending"] > 0)


def level1(x: dict[str, float]) -> Key:
    return (*level0(x), x.get("mine_type", 0.0))


def level2(x: dict[str, float]) -> Key:
    count = round(math.expm1(x.get("mine_count", 0.0)))
    return (*level1(x), min(3, count), _bucket(x.get("mine_idle_s", 12.0), 3.0, 4))


def level3(x: dict[str, float]) -> Key:
    pop = _bucket(x.get("pop_short", 0.0), 1.0, 4)
    return (*level2(x), pop, _bucket(x.get("item_idle_s", 12.0), 3.0, 4))


LEVELS: tuple[Callable[[dict[str, float]], Key], ...] = (level0, level1, level2, level3)


class SlotAdjuster:
    name = "river-slots"

    def __init__(self, levels: int = 2, m: float = 20.0, prior: float = 0.02) -> None:
        if not 1 <= levels <= len(LEVELS):
            raise ValueError(f"levels must be 1..{len(LEVELS)}, not {levels}")
        self.levels = levels
        self.m = m
        self.prior = prior
        self.reset()

    def reset(self) -> None:
        self.rates: list[dict[Key, stats.Mean]] = [{} for _ in range(self.levels)]
        self.examples = 0

    def learn_one(self, x: dict[str, float], y: bool, w: float = 1.0) -> None:
        for key_of, rates in zip(LEVELS, self.rates, strict=False):
            key = key_of(x)
            mean = rates.get(key)
            if mean is None:
                mean = rates[key] = stats.Mean()
            mean.update(1.0 if y else 0.0, w)
        self.examples += 1

    def predict_one(self, x: dict[str, float]) -> float:
        """P(engagement): each level's rate, shrunk toward the level above it."""
        p = self.prior
        for key_of, rates in zip(LEVELS, self.rates, strict=False):
            mean = rates.get(key_of(x))
            if mean is not None:
                p = (mean.n * mean.get() + self.m * p) / (mean.n + self.m)
        return p

    def predict_many(self, xs: list[dict[str, float]]) -> list[float]:
        return [self.predict_one(x) for x in xs]

    def __len__(self) -> int:
        """Slots known, over every level (bounded by the buckets: a few thousand)."""
        return sum(len(r) for r in self.rates)
