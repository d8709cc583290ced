"""The feedback join: label the items of lists published to a user by what the user
does next.

An item of a published list is *positive* if the user interacts with it within
the next ``horizon_events`` events or ``horizon_ms`` milliseconds, weighted by
the strongest event type seen (purchase > add to cart > click > view); the
others are negative. A list is labelled once its window closes (at the user's
next event past either bound). Each user keeps at most ``max_lists`` open lists,
and at most ``max_users`` users have open lists (least recently published first
out: their labels are lost, memory is bounded). An open list keeps its
candidates' descriptions (the adjuster's ``x``, tuples of numbers of one width)
packed in one float array: a dict of features per candidate cost about 12 KB
per user. With ``pack=False`` the descriptions are kept as given: for an
adjuster whose descriptions are shared tuples (the slot adjuster's), eight bytes
a candidate, and no packing per list.

Given a ``store`` (in the worker: the ``feedback`` Faust table, changelog-backed,
keyed like the input topic so it moves with its partition), every publish
writes the user's open lists there too, and a user missing from memory (after a
restart, a rebalance, or the LRU) is read back from it: a list survives until
its label. The in-memory copy stays authoritative while the worker owns the
user, so many events in flight never label one list twice; :meth:`clear`
drops it when partitions move.

>>> j = FeedbackJoin(horizon_events=2, horizon_ms=10_000, negatives_per_list=1)
>>> j.publish("u", 0, ["a", "b", "c"], [(1.0,), (2.0,), (3.0,)])
>>> j.observe("u", "b", "purchase", 1_000)
[]
>>> j.observe("u", "z", "click", 2_000)
[((2.0,), True, 4.0), ((1.0,), False, 1.0)]
"""

from __future__ import annotations

import zlib
from array import array
from collections import OrderedDict, deque
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from itertools import chain

import msgpack

from models.rerank.features import TYPE_WEIGHT

X = tuple[float, ...]
Example = tuple[X, bool, float]
_MAX_PACKED = 100_000  # shared descriptions whose bytes are kept


@dataclass(slots=True)
class _Open:
    ts: int
    items: tuple[str, ...]
    # Candidate i's x: xs[i] as given (shared tuples), or packed row-major in
    # values at [i * width, ...).
    xs: tuple[X, ...] | array[float]
    seen: int = 0
    hits: dict[str, float] = field(default_factory=dict)

    def x(self, i: int) -> X:
        xs = self.xs
        if isinstance(xs, tuple):
            return xs[i]
        width = len(xs) // len(self.items)
        return tuple(xs[i * width : (i + 1) * width])

    def packed(self, cache: dict[X, bytes] | None = None) -> bytes:
        """The descriptions as float64 bytes, row-major; ``cache``: each shared
        tuple's bytes, kept from list to list (a few thousand slots recur)."""
        xs = self.xs
        if isinstance(xs, array):
            return xs.tobytes()
        if cache is None:
            return array("d", chain.from_iterable(xs)).tobytes()
        if len(cache) > _MAX_PACKED:  # descriptions that do not recur: start again
            cache.clear()
        out = []
        for x in xs:
            b = cache.get(x)
            if b is None:
                b = cache[x] = array("d", x).tobytes()
            out.append(b)
        return b"".join(out)


class FeedbackJoin:
    def __init__(
        self,
        horizon_events: int = 1,
        horizon_ms: int = 30 * 60 * 1000,
        max_lists: int = 3,
        negatives_per_list: int = 5,
        max_users: int = 200_000,
        store: MutableMapping[bytes, bytes] | None = None,
        pack: bool = True,
    ) -> None:
        self.store = store
        self.pack = pack
        self.horizon_events = horizon_events
        self.horizon_ms = horizon_ms
        self.max_lists = max_lists
        self.negatives_per_list = negatives_per_list
        self.max_users = max_users
        self._open: OrderedDict[str, deque[_Open]] = OrderedDict()
        self._packed: dict[X, bytes] | None = None if pack else {}

    def publish(self, user: str, ts: int, items: Sequence[str], xs: Sequence[X]) -> None:
        """Open a list of ``items``, described by ``xs`` (one ``x`` per item)."""
        lists = self._lists(user)
        if lists is None:
            lists = self._open[user] = deque(maxlen=self.max_lists)
        if items:
            kept = array("d", chain.from_iterable(xs)) if self.pack else tuple(xs)
            lists.append(_Open(ts, tuple(items), kept))
        self._open.move_to_end(user)
        if len(self._open) > self.max_users:
            self._open.popitem(last=False)  # still in the store, if there is one
        if self.store is not None:
            self.store[user.encode()] = _encode(lists, self._packed)

    def observe(self, user: str, item: str, event_type: str, ts: int) -> list[Example]:
        """Count one event of ``user``; return the examples of every list it closes.

        The store is not written here: the publish that follows every event writes
        what is left. Until then a crash replays this event against the old lists.
        """
        lists = self._lists(user)
        if not lists:
            return []
        out: list[Example] = []
        weight = TYPE_WEIGHT.get(event_type, 1.0)
        keep: deque[_Open] = deque(maxlen=self.max_lists)
        for o in lists:
            if ts - o.ts > self.horizon_ms:
                out += self._label(o)  # closed by time: this event is not counted
                continue
            o.seen += 1
            if item in o.items:
                o.hits[item] = max(o.hits.get(item, 0.0), weight)
            if o.seen >= self.horizon_events:
                out += self._label(o)
            else:
                keep.append(o)
        self._open[user] = keep  # empty is kept too: "none open", not "not loaded"
        return out

    def forget(self, user: str) -> None:
        self._open.pop(user, None)
        if self.store is not None:
            self.store.pop(user.encode(), None)

    def clear(self) -> None:
        """Drop the in-memory copy (partitions moved): the store has the truth."""
        self._open.clear()

    def _lists(self, user: str) -> deque[_Open] | None:
        lists = self._open.get(user)
        if lists is None and self.store is not None:
            raw = self.store.get(user.encode())
            if raw is not None:
                lists = self._open[user] = _decode(raw, self.max_lists)
                if len(self._open) > self.max_users:
                    self._open.popitem(last=False)
        return lists

    def _label(self, o: _Open) -> list[Example]:
        hits = o.hits
        if hits:
            pos = [(o.x(i), True, hits[c]) for i, c in enumerate(o.items) if c in hits]
            neg_all = [i for i, c in enumerate(o.items) if c not in hits]
        else:  # the usual case: nothing engaged with
            pos, neg_all = [], list(range(len(o.items)))
        # A uniform sample, the same on every replay (seeded by the list). Every
        # candidate has the same chance, wherever it stands in the list. (A stride
        # over the list never picked its last candidates, the trending ones, as
        # negatives: the adjuster learned they were always engaged with.)
        if len(neg_all) > self.negatives_per_list:
            seed = zlib.crc32(f"{o.ts}:".encode())
            neg_all = sample(neg_all, self.negatives_per_list, seed)
        neg = [(o.x(i), False, 1.0) for i in neg_all]
        return pos + neg

    def __len__(self) -> int:
        return sum(1 for lists in self._open.values() if lists)


def sample(indices: list[int], k: int, seed: int) -> list[int]:
    """``k`` of ``indices`` (``k < len(indices)``), uniformly and in ascending order,
    determined by ``seed``: a partial Fisher-Yates shuffle driven by a linear
    congruential generator (seeding ``random.Random`` per list costs more than the
    whole draw).

    >>> sample(list(range(30)), 5, seed=7) == sample(list(range(30)), 5, seed=7)
    True
    >>> len(set(sample(list(range(30)), 5, seed=7)))
    5
    """
    idx = list(indices)
    n, h = len(idx), seed & 0x7FFFFFFF
    for j in range(k):
        h = (h * 1103515245 + 12345) & 0x7FFFFFFF
        r = j + (h >> 8) % (n - j)  # the high bits: an LCG's low bits cycle fast
        idx[j], idx[r] = idx[r], idx[j]
    return sorted(idx[:k])


FORMAT = 3  # 1: with feature names; 2: slots before the category flag


def _encode(lists: deque[_Open], cache: dict[X, bytes] | None = None) -> bytes:
    rows = [[o.ts, list(o.items), o.packed(cache), o.seen, o.hits] for o in lists]
    return msgpack.packb([FORMAT, *rows])


def _decode(raw: bytes, max_lists: int) -> deque[_Open]:
    version, *rows = msgpack.unpackb(raw)
    out: deque[_Open] = deque(maxlen=max_lists)
    if version != FORMAT:  # lists of an older worker: their descriptions do not apply
        return out
    for ts, items, values, seen, hits in rows:
        out.append(_Open(ts, tuple(items), array("d", values), seen, hits))
    return out
