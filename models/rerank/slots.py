"""The slot adjuster: online engagement rates per candidate *slot*, shrunk level by level.

A candidate's slot is where it came from, from coarse to fine:

1. its source and a band of its rank there: the user's own recent items
   (recency rank 1, 2, 3-4, 5-7, 8+), else the scorer's list (rank 0, 1-2,
   3-5, 6+), else trending now, else trending now in the category of the
   user's current item (rank 0, 1-2, 3-5, 6+); and how its category relates
   to the user: the current item's (2), another of the user's items' (1), or
   neither or unknown (0);
2. its exact rank in that source (ranks past 10 share one slot);
3. how many times the user interacted with it (0, 1, 2, 3+).

A slot is a tuple and each level's slot is a prefix of the next one's, so a
candidate's ``x`` is its deepest slot. For each slot it keeps the
(type-weighted) rate at which users engaged with such candidates: a river
``stats.Mean`` per slot. A slot seen rarely is shrunk toward its parent, one
level coarser (``m`` pseudo-examples of the parent's rate): engagement is rare
(Taobao: about 700 hits in 42,000 lists), and without the bands the exact
ranks' noisy rates (recency rank 5 below rank 6) cost more than they told.

It is a Bernoulli bandit over slots, used greedily: ranking candidates by these
rates learns, online, how to interleave the scorer's list with the user's own
recent items and the trending ones, which is what the fixed hand-made blends do
with one hand-picked order. Measured against a logistic regression over every
feature (``river-logreg``, :mod:`models.rerank.logreg`) and other slot
layouts: see docs/reranking.md.

>>> s = SlotAdjuster(levels=2)
>>> mine = (1, 2, 1)  # my most recent other item (band 1, current category, recency rank 1)
>>> top = (20, 0, 20)  # the scorer's top item (band 20, other category, rank 0), not mine
>>> for _ in range(200):
...     s.learn_one(mine, True); s.learn_one(top, False)
>>> s.predict_one(mine) > 0.9 > 0.1 > s.predict_one(top)
True
>>> s.examples
400
"""

from __future__ import annotations

from collections.abc import Sequence

from river import stats

from models.rerank.base import Adjuster, X
from models.rerank.features import ListContext

CAP = 11  # ranks past 10 share one slot
# Slot codes: recency ranks are 1..11, the scorer's 20..31, trending 40, trending
# in the current category 50..61.
BASE, TRENDING, CATEGORY = 20, 40, 50
PREFIX = (2, 3, 4)  # the length of each level's slot: (band, category), rank, count


def _bands(edges: tuple[int, ...]) -> tuple[int, ...]:
    """Each rank's band (0..CAP): the index of the first edge the rank is below."""
    return tuple(sum(rank >= edge for edge in edges) for rank in range(CAP + 1))


# What a checkpoint leaves out: derived from the rates, or remembered answers.
_CACHES = frozenset({"_chains", "_predicted", "_under", "_slots"})

RECENT_BAND = _bands((1, 2, 3, 5, 8))  # ranks (0) | 1 | 2 | 3-4 | 5-7 | 8+
BASE_BAND = _bands((1, 3, 6))  # ranks 0 | 1-2 | 3-5 | 6+


class SlotAdjuster(Adjuster):
    name = "river-slots"
    shared_descriptions = True  # one tuple object per slot

    def __init__(self, levels: int = 3, m: float = 50.0, prior: float = 0.02) -> None:
        if not 1 <= levels <= len(PREFIX):
            raise ValueError(f"levels must be 1..{len(PREFIX)}, not {levels}")
        self.levels = levels
        self.m = m
        self.prior = prior
        self.reset()

    def reset(self) -> None:
        self.rates: list[dict[X, stats.Mean]] = [{} for _ in range(self.levels)]
        # Each slot's Mean at every level, coarse to fine (the same objects as in rates).
        self._chains: dict[X, tuple[stats.Mean, ...]] = {}
        self.examples = 0
        self._clear_caches()

    def _clear_caches(self) -> None:
        # Predictions are kept until a slot under the same root (level-1 slot)
        # learns: every Mean on a slot's chain is under its root. Most roots learn
        # less often than their slots are asked for.
        self._predicted: dict[X, float] = {}
        self._under: dict[X, list[X]] = {}  # root -> the predicted slots under it
        self._slots: dict[X, X] = {}  # each slot's one tuple object (describe's x)

    def __getstate__(self) -> dict[str, object]:
        # All but the caches, which are rebuilt (so older checkpoints load too).
        return {k: v for k, v in self.__dict__.items() if k not in _CACHES}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update({k: v for k, v in state.items() if k not in _CACHES})
        self._chains = {}  # rebuilt on demand from rates
        self._clear_caches()

    def _chain(self, x: X) -> tuple[stats.Mean, ...]:
        chain = self._chains.get(x)
        if chain is None:
            chain = self._chains[x] = tuple(
                rates.setdefault(x[:n], stats.Mean())
                for n, rates in zip(PREFIX, self.rates, strict=False)
            )
        return chain

    def describe(self, items: Sequence[str], ctx: ListContext) -> list[X]:
        seen, rank_of, depth = ctx.user.seen, ctx.rank_of, PREFIX[self.levels - 1]
        trending, category_rank = ctx.trending, ctx.category_rank
        current = ctx.category
        mine_in = ctx.categories() if current is not None else {}
        category_of = ctx.signals.catalogue.get
        shared = self._slots.setdefault
        out: list[X] = []
        for item in items:
            if current is None:
                near = 0
            else:
                c = category_of(item)
                near = 0 if c is None else 2 if c == current else 1 if c in mine_in else 0
            # (conditionals, not min(): a builtin call per candidate costs more)
            mine = seen.get(item)
            if mine is not None:
                rank = mine[0] if mine[0] < CAP else CAP
                key: X = (RECENT_BAND[rank], near, rank, mine[3] if mine[3] < 3 else 3)
            elif (r := rank_of.get(item)) is not None:
                rank = r if r < CAP else CAP
                key = (BASE + BASE_BAND[rank], near, BASE + rank, 0)
            elif item not in trending and (r := category_rank.get(item)) is not None:
                rank = r if r < CAP else CAP
                key = (CATEGORY + BASE_BAND[rank], near, CATEGORY + rank, 0)
            else:
                key = (TRENDING, near, TRENDING, 0)
            x = key if depth == PREFIX[-1] else key[:depth]  # the full key: no copy
            out.append(shared(x, x))
        return out

    def learn_one(self, x: X, y: bool, w: float = 1.0) -> None:
        for mean in self._chain(x):
            mean.update(1.0 if y else 0.0, w)
        self.examples += 1
        stale = self._under.pop(x[: PREFIX[0]], None)
        if stale is not None:
            predicted = self._predicted
            for slot in stale:
                del predicted[slot]

    def learn_many(self, examples: Sequence[tuple[X, bool, float]]) -> None:
        """Learn a block of examples: one weighted update per distinct slot.

        A weighted mean does not depend on the order it saw its values in, so
        updating each slot once with its examples' weighted mean (at their summed
        weight) leaves the rates :meth:`learn_one` on each would leave.
        """
        sums: dict[X, list[float]] = {}
        for x, y, w in examples:
            acc = sums.get(x)
            if acc is None:
                acc = sums[x] = [0.0, 0.0]
            acc[0] += w if y else 0.0
            acc[1] += w
        for x, (hit, weight) in sums.items():
            for mean in self._chain(x):
                mean.update(hit / weight, weight)
        self.examples += len(examples)
        self._predicted.clear()
        self._under.clear()

    def predict_one(self, x: X) -> float:
        """P(engagement): each level's rate, shrunk toward the level above it."""
        p, m = self.prior, self.m
        for mean in self._chain(x):
            n = mean.n  # 0 for a slot never learned: p stays the parent's
            p = (n * mean.get() + m * p) / (n + m)
        return p

    def predict_many(self, xs: Sequence[X]) -> list[float]:
        """:meth:`predict_one` of each, in one loop (a list's candidates, per event)."""
        prior, m, chains, chain_of = self.prior, self.m, self._chains, self._chain
        predicted, under, root = self._predicted, self._under, PREFIX[0]
        out = []
        for x in xs:
            p = predicted.get(x)
            if p is None:
                p = prior
                for mean in chains.get(x) or chain_of(x):
                    n = mean.n
                    p = (n * mean.get() + m * p) / (n + m)
                predicted[x] = p
                under.setdefault(x[:root], []).append(x)
            out.append(p)
        return out

    def __len__(self) -> int:
        """Slots known, over every level (bounded by the buckets: a few thousand)."""
        return sum(len(r) for r in self.rates)
