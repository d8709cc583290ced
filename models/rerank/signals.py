"""Live signals the features read: item popularity over sliding windows, when
each item was last touched by anyone, the items trending now (overall and per
category), and each item's category as events tell it. Decayed counters keep it
O(1) per event and bounded by the catalogue (items unseen for a day are dropped
on sweeps).

>>> s = ItemSignals(half_lives_s=(60.0,))
>>> s.observe("a", 0, "shoes"); s.observe("a", 0); s.observe("b", 30_000, "hats")
>>> round(s.popularity("a", 60_000)[0], 3), round(s.popularity("b", 60_000)[0], 3)
(1.0, 0.707)
>>> s.trending(1), s.category("a"), s.trending_in("hats", 5), s.trending_in(None, 5)
(['a'], 'shoes', ['b'], [])
"""

from __future__ import annotations

import math

DAY_MS = 86_400_000


class ItemSignals:
    def __init__(
        self,
        half_lives_s: tuple[float, ...] = (300.0, 3600.0),
        trending_size: int = 50,
        category_trending_size: int = 20,
    ) -> None:
        self.rates = [math.log(2) / (h * 1000) for h in half_lives_s]
        self.trending_size = trending_size
        self.category_trending_size = category_trending_size
        self._counts: dict[str, list[float]] = {}  # item -> decayed counts at last_ts
        self._last: dict[str, int] = {}
        # Trending, exactly and without scans: an item's short-window popularity at
        # time t is exp(level - rate * t), where level = log(sum of exp(rate * ts) over
        # its events). Every item decays alike, so the order of levels is the order of
        # popularity at any t; and a level only grows, when its item is seen, so the
        # top few can be kept up to date on each event.
        self._level: dict[str, float] = {}
        self._top = _Top(trending_size)
        # The same per category: an item's category (the latest an event named),
        # and each category's top items by level.
        self._category: dict[str, str] = {}
        self._category_top: dict[str, _Top] = {}

    @property
    def catalogue(self) -> dict[str, str]:
        """Each item's category, as the latest event naming one said (read-only)."""
        return self._category

    def observe(self, item: str, ts: int, category: str | None = None) -> None:
        counts = self.popularity(item, ts)
        self._counts[item] = [c + 1.0 for c in counts]
        self._last[item] = ts
        level = _log_add(self._level.get(item, -math.inf), self.rates[0] * ts)
        self._level[item] = level
        self._top.promote(item, level)
        known = self._category.get(item)
        if category is None:
            category = known
        elif category != known:
            self._category[item] = category
            if known is not None:  # recategorised: out of the old category's top
                old = self._category_top.get(known)
                if old is not None:
                    old.discard(item)
        if category is not None:
            top = self._category_top.get(category)
            if top is None:
                top = self._category_top[category] = _Top(self.category_trending_size)
            top.promote(item, level)

    def category(self, item: str | None) -> str | None:
        """The item's category, as the latest event that named one said."""
        return self._category.get(item) if item is not None else None

    def trending_in(self, category: str | None, n: int) -> list[str]:
        """The ``n`` (at most ``category_trending_size``) items of ``category`` with
        the highest short-window popularity now."""
        top = self._category_top.get(category) if category is not None else None
        return top.ranked()[:n] if top is not None else []

    def popularity(self, item: str, now: int) -> list[float]:
        counts = self._counts.get(item)
        if counts is None:
            return [0.0] * len(self.rates)
        dt = max(0, now - self._last[item])
        return [c * math.exp(-r * dt) for c, r in zip(counts, self.rates, strict=True)]

    def last_seen(self, item: str) -> int | None:
        return self._last.get(item)

    def trending(self, n: int) -> list[str]:
        """The ``n`` (at most ``trending_size``) items with the highest short-window
        popularity now."""
        return self._top.ranked()[:n]

    def forget_older_than(self, now: int, age_ms: int = DAY_MS) -> int:
        stale = [i for i, t in self._last.items() if now - t > age_ms]
        for i in stale:
            del self._counts[i], self._last[i], self._level[i]
            self._top.discard(i)
            category = self._category.pop(i, None)
            top = self._category_top.get(category) if category is not None else None
            if top is not None:
                top.discard(i)
                if not top.levels:
                    del self._category_top[category]  # type: ignore[arg-type]
        return len(stale)

    def __len__(self) -> int:
        return len(self._counts)


class _Top:
    """The ``size`` items with the highest levels. Levels only grow, and only when
    their item is seen, so checking the item just seen keeps it exact. The weakest
    member and the ranking are cached until the members change: most events touch
    an item outside the top, and are turned away by one comparison."""

    __slots__ = ("_ranked", "_weakest", "levels", "size")

    def __init__(self, size: int) -> None:
        self.levels: dict[str, float] = {}
        self.size = size
        self._weakest: str | None = None
        self._ranked: list[str] | None = None

    def promote(self, item: str, level: float) -> None:
        levels = self.levels
        if item in levels or len(levels) < self.size:
            if item == self._weakest or item not in levels:
                self._weakest = None
            levels[item] = level
            self._ranked = None
            return
        weakest = self._weakest
        if weakest is None:
            weakest = self._weakest = min(levels, key=levels.__getitem__)
        if level > levels[weakest]:
            del levels[weakest]
            levels[item] = level
            self._weakest = self._ranked = None

    def discard(self, item: str) -> None:
        if self.levels.pop(item, None) is not None:
            self._weakest = self._ranked = None

    def ranked(self) -> list[str]:
        """The members, highest level first (ties: the first promoted first)."""
        if self._ranked is None:
            levels = self.levels
            self._ranked = sorted(levels, key=levels.__getitem__, reverse=True)
        return self._ranked


def _log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) without overflow."""
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi)) if lo > -math.inf else hi
