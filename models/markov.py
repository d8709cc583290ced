"""First-order item transitions plus popularity, learned online.

The scorer reads its counts through a :class:`TransitionStore`, so the same
logic runs over a plain dict (tests, offline use) or over Faust tables (the
worker).

score(c) = (1 - w_pop) * sum_t decay^age(t) * P(c | item_t) / sum_t decay^age(t)
         + w_pop * count(c) / count(most popular item)

over the last ``window`` events t. An event's influence is its share of the
transition part of the top items' scores; when no transition explains the list
(a cold start served by popularity alone), every event gets an equal share.

>>> store = DictTransitionStore()
>>> m = MarkovScorer(store)
>>> for a, b in [("a", "b"), ("a", "b"), ("a", "c"), ("x", "y")]:
...     m.learn_one(a, b)
>>> out = m.score([[Interaction("x", "view", 1), Interaction("a", "click", 2)]], k=2)[0]
>>> [i for i, _ in out.items]
['b', 'y']
>>> [round(w, 2) for w in out.influences]  # x explains 'y', a explains 'b'
[0.43, 0.57]
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Protocol

from models.base import Interaction, Scored, normalise


@dataclass(slots=True)
class ItemRow:
    """What the store knows about one item: how often it was seen and what followed it."""

    count: int = 0
    successors: dict[str, int] = field(default_factory=dict)

    def add_successor(self, item_id: str, max_successors: int) -> tuple[str, int] | None:
        """Count ``item_id`` once; returns the successor it replaced and its count, if any."""
        succ = self.successors
        if item_id in succ or len(succ) < max_successors:
            succ[item_id] = succ.get(item_id, 0) + 1
            return None
        # Space-saving: the newcomer replaces the rarest successor and inherits
        # its count, so a rising item can climb in and bounded memory holds.
        rarest = min(succ, key=succ.__getitem__)
        count = succ.pop(rarest)
        succ[item_id] = count + 1
        return rarest, count


class TransitionStore(Protocol):
    """Where transition and popularity counts live."""

    def record(
        self, prev_item: str | None, item: str, partition: int, offset: int | None = None
    ) -> None:
        """Count ``item`` once, and the transition ``prev_item -> item``, as read from
        input ``partition`` (a store that keeps each partition's rows apart writes there)
        at input ``offset`` (a store may skip rows that already counted it)."""
        ...

    def successors(self, item: str) -> Mapping[str, int]:
        """Counts of the items that followed ``item``."""
        ...

    def popular(self, k: int) -> list[tuple[str, int]]:
        """The ``k`` most frequent items with their counts, most frequent first."""
        ...


_count = itemgetter(1)
_score_then_item = itemgetter(1, 0)


class PopularityIndex:
    """Item counts (which only grow) with a lazily refreshed top list."""

    def __init__(self, refresh_every: int = 500) -> None:
        self.counts: Counter[str] = Counter()
        self._top: list[tuple[str, int]] = []
        self._top_k = 0
        self._changed: dict[str, None] = {}  # items counted since the last refresh, in order
        self._stale = 0
        self._refresh_every = refresh_every

    def add(self, item: str, n: int = 1) -> None:
        counts = self.counts
        counts[item] = counts.get(item, 0) + n  # Counter's += calls __missing__ on new items
        self._changed[item] = None
        self._stale += 1

    def top(self, k: int) -> list[tuple[str, int]]:
        # Refreshed every `refresh_every` updates. Counts only grow, so an item
        # outside the last top list that was not counted since cannot enter it:
        # the new top list is among the old one and the items counted since.
        pool: Iterable[str]
        if k > self._top_k or not self._top:
            pool = self.counts.keys()
        elif self._stale >= self._refresh_every:
            # (a dict, not a set: ties keep one order on every run, whatever the hash seed)
            pool = dict.fromkeys([*(i for i, _ in self._top), *self._changed]).keys()
        else:
            return self._top[:k]
        counts = self.counts
        self._top_k = max(k, 100)
        self._top = heapq.nlargest(self._top_k, ((i, counts[i]) for i in pool), key=_count)
        self._changed.clear()
        self._stale = 0
        return self._top[:k]


class DictTransitionStore:
    """An in-memory :class:`TransitionStore`."""

    def __init__(self, max_successors: int = 50) -> None:
        self.rows: dict[str, ItemRow] = {}
        self.popularity = PopularityIndex()
        self.max_successors = max_successors

    def record(
        self, prev_item: str | None, item: str, partition: int = 0, offset: int | None = None
    ) -> None:
        self.rows.setdefault(item, ItemRow()).count += 1
        self.popularity.add(item)
        if prev_item is not None:
            self.rows.setdefault(prev_item, ItemRow()).add_successor(item, self.max_successors)

    def successors(self, item: str) -> Mapping[str, int]:
        row = self.rows.get(item)
        return row.successors if row else {}

    def popular(self, k: int) -> list[tuple[str, int]]:
        return self.popularity.top(k)


class MarkovScorer:
    """The online Markov-1 + popularity :class:`~models.base.Scorer`."""

    name = "markov"

    def __init__(
        self,
        store: TransitionStore,
        window: int = 5,
        decay: float = 0.5,
        popularity_weight: float = 0.05,
    ) -> None:
        self.store = store
        self.window = window
        self.decay = decay
        self.popularity_weight = popularity_weight
        self._weights: dict[tuple[int, float], tuple[list[float], float]] = {}

    @property
    def version(self) -> str:
        return "online"

    def learn_one(
        self, prev_item: str | None, item: str, partition: int = 0, offset: int | None = None
    ) -> None:
        self.store.record(prev_item, item, partition, offset)

    def score(self, sequences: Sequence[Sequence[Interaction]], k: int) -> list[Scored]:
        popular = self.store.popular(k)
        return [self._score_one(seq, k, popular) for seq in sequences]

    def _score_one(
        self, seq: Sequence[Interaction], k: int, popular: list[tuple[str, int]]
    ) -> Scored:
        n = len(seq)
        start = max(0, n - self.window)
        weights, wsum = self._recency(n - start)
        w_trans = 1.0 - self.popularity_weight
        successors = self.store.successors

        # Per-event transition distributions, weighted by recency: event t adds
        # count * scale[t] to each of its successors.
        contrib: dict[int, tuple[Mapping[str, int], float]] = {}
        scores: dict[str, float] = {}
        get = scores.get
        for t, w in enumerate(weights, start):
            succ = successors(seq[t].item_id)
            total = sum(succ.values())
            if not total:
                continue
            scale = w_trans * w / wsum / total
            contrib[t] = (succ, scale)
            weighted = zip(succ, map(scale.__mul__, succ.values()), strict=True)
            if scores:
                for item, s in weighted:
                    scores[item] = get(item, 0.0) + s
            else:  # the first (on short histories, the only) one: no sums yet
                scores.update(weighted)

        if popular:
            top_count, pw = popular[0][1] or 1, self.popularity_weight
            for item, c in popular:
                scores[item] = get(item, 0.0) + pw * c / top_count

        # sorted()[:k] is nlargest's documented equivalent, and faster on these sizes.
        # Only items scoring at least the k-th best score can be in the top k: sort
        # those (a sort of bare floats finds that score, several times cheaper than
        # sorting every item by a tuple key).
        ranked: Iterable[tuple[str, float]] = scores.items()
        if len(scores) > k > 0:
            cut = sorted(scores.values(), reverse=True)[k - 1]
            ranked = [pair for pair in ranked if pair[1] >= cut]
        top = sorted(ranked, key=_score_then_item, reverse=True)[:k]  # (item, float) pairs
        if not contrib:
            return Scored(items=top, influences=normalise([0.0] * n))
        top_ids = [i for i, _ in top]
        zeros = [0.0] * len(top_ids)
        shares = {
            t: sum(map(scale.__mul__, map(succ.get, top_ids, zeros)))
            for t, (succ, scale) in contrib.items()
        }
        # normalise() of the whole list, without its zeros: adding 0.0 to a float sum
        # changes nothing, and 0.0 / total is 0.0.
        share_sum = float(sum(shares.values()))
        if share_sum <= 0.0:
            return Scored(items=top, influences=[1.0 / n] * n)
        influence = [0.0] * n
        for t, share in shares.items():
            influence[t] = share / share_sum
        return Scored(items=top, influences=influence)

    def _recency(self, m: int) -> tuple[list[float], float]:
        """The weights of the last ``m`` events, oldest first, and their sum (or 1.0):
        the same for every user with ``m`` events in the window, so computed once."""
        key = (m, self.decay)
        cached = self._weights.get(key)
        if cached is None:
            weights = [self.decay ** (m - 1 - j) for j in range(m)]
            cached = self._weights[key] = (weights, sum(weights) or 1.0)
        return cached
