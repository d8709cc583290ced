"""The slot adjuster: online engagement rates per candidate *slot*, shrunk level by level.

A candidate's slot is where it came from: its rank in the scorer's list, its
recency rank in the user's own history, whether it is trending now, and, level
by level, more of it in coarse buckets (the strongest event type the user had
with it; how often and how long ago; the item's popularity and idle time). A
slot is a tuple, and each level's slot is a prefix of the next one's, so a
candidate's ``x`` is its deepest slot. For each slot it keeps the
(type-weighted) rate at which users engaged with such candidates: a river
``stats.Mean`` per slot. A slot seen rarely is shrunk toward its parent, one
level coarser (``m`` pseudo-examples of the parent's rate), so a deep level
only matters where the stream has shown it.

It is a Bernoulli bandit over slots, used greedily: ranking candidates by these
rates learns, online, how to interleave the scorer's list with the user's own
recent items and the trending ones, which is what the fixed hand-made blends do
with one hand-picked order. Measured against a logistic regression over every
feature (``river-logreg``, :mod:`stream_app.adjust.logreg`): see the README.

>>> s = SlotAdjuster(levels=1)
>>> mine = (-1, 0, 0)  # not ranked by the scorer, my most recent other item
>>> top = (0, -1, 0)  # the scorer's top item, not mine
>>> for _ in range(200):
...     s.learn_one(mine, True); s.learn_one(top, False)
>>> s.predict_one(mine) > 0.9 > 0.1 > s.predict_one(top)
True
>>> s.examples
400
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from river import stats

from stream_app.adjust.base import Adjuster, X
from stream_app.adjust.features import ListContext

CAP = 11  # ranks past 10 share one slot
#: How long each level's slot is: ranks and trending; + the strongest event type;
#: + count and idle buckets of the user's own interactions; + the item's popularity
#: and idle buckets.
PREFIX = (3, 4, 6, 8)
NEVER = 4  # the idle bucket of "never"


def _bucket(value: float, width: float, top: int) -> int:
    return min(top, int(value / width))


def _idle(now: int, then: int | None) -> int:
    """Idle time in buckets of log-seconds (1 s, 20 s, 2.2 h, ...)."""
    return NEVER if then is None else _bucket(math.log1p(max(0, now - then) / 1000), 3.0, NEVER)


class SlotAdjuster(Adjuster):
    name = "river-slots"

    def __init__(self, levels: int = 2, m: float = 20.0, prior: float = 0.02) -> None:
        if not 1 <= levels <= len(PREFIX):
            raise ValueError(f"levels must be 1..{len(PREFIX)}, not {levels}")
        self.levels = levels
        self.m = m
        self.prior = prior
        self.reset()

    def reset(self) -> None:
        self.rates: list[dict[X, stats.Mean]] = [{} for _ in range(self.levels)]
        self.examples = 0

    def describe(self, items: Sequence[str], ctx: ListContext) -> list[X]:
        user, rank_of, trending = ctx.user, ctx.rank_of, ctx.trending
        seen, now, deep = user.seen, user.now, self.levels
        out: list[X] = []
        for item in items:
            r = rank_of.get(item)
            mine = seen.get(item)
            key: tuple[float, ...] = (
                -1 if r is None else min(CAP, r),
                -1 if mine is None else min(CAP, mine[0]),
                1 if item in trending else 0,
                0.0 if mine is None else mine[2],
            )
            if deep >= 3:
                key += (0, NEVER) if mine is None else (min(3, mine[3]), _idle(now, mine[1]))
            if deep >= 4:
                pop = ctx.signals.popularity(item, now)[0]
                key += (_bucket(math.log1p(pop), 1.0, 4), _idle(now, ctx.signals.last_seen(item)))
            out.append(key[: PREFIX[deep - 1]])
        return out

    def learn_one(self, x: X, y: bool, w: float = 1.0) -> None:
        for n, rates in zip(PREFIX, self.rates, strict=False):
            key = x[:n]
            mean = rates.get(key)
            if mean is None:
                mean = rates[key] = stats.Mean()
            mean.update(1.0 if y else 0.0, w)
        self.examples += 1

    def predict_one(self, x: X) -> float:
        """P(engagement): each level's rate, shrunk toward the level above it."""
        p, m = self.prior, self.m
        for n, rates in zip(PREFIX, self.rates, strict=False):
            mean = rates.get(x[:n])
            if mean is not None:
                p = (mean.n * mean.get() + m * p) / (mean.n + m)
        return p

    def predict_many(self, xs: Sequence[X]) -> list[float]:
        """:meth:`predict_one` of each, in one loop (a list's candidates, per event)."""
        prior, m = self.prior, self.m
        levels = list(zip(PREFIX, self.rates, strict=False))
        out = []
        for x in xs:
            p = prior
            for n, rates in levels:
                mean = rates.get(x[:n])
                if mean is not None:
                    p = (mean.n * mean.get() + m * p) / (mean.n + m)
            out.append(p)
        return out

    def __len__(self) -> int:
        """Slots known, over every level (bounded by the buckets: a few thousand)."""
        return sum(len(r) for r in self.rates)
