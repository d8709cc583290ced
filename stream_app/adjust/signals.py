"""Live signals the features read: item popularity over sliding windows, and when
each item was last touched by anyone. Decayed counters keep it O(1) per event
and bounded by the catalogue (items unseen for a day are dropped on sweeps).

>>> s = ItemSignals(half_lives_s=(60.0,))
>>> s.observe("a", 0); s.observe("a", 0); s.observe("b", 30_000)
>>> round(s.popularity("a", 60_000)[0], 3), round(s.popularity("b", 60_000)[0], 3)
(1.0, 0.707)
>>> s.trending(1)
['a']
"""

from __future__ import annotations

import math

DAY_MS = 86_400_000


class ItemSignals:
    def __init__(
        self, half_lives_s: tuple[float, ...] = (300.0, 3600.0), trending_size: int = 50
    ) -> None:
        self.rates = [math.log(2) / (h * 1000) for h in half_lives_s]
        self.trending_size = trending_size
        self._counts: dict[str, list[float]] = {}  # item -> decayed counts at last_ts
        self._last: dict[str, int] = {}
        # Trending, exactly and without scans: an item's short-window popularity at
        # time t is exp(level - rate * t), where level = log(sum of exp(rate * ts) over
        # its events). Every item decays alike, so the order of levels is the order of
        # popularity at any t; and a level only grows, when its item is seen, so the
        # top few can be kept up to date on each event.
        self._level: dict[str, float] = {}
        self._top: dict[str, float] = {}
        self._ranked: list[str] | None = None  # _top by level, until the next change

    def observe(self, item: str, ts: int) -> None:
        self._ranked = None
        counts = self.popularity(item, ts)
        self._counts[item] = [c + 1.0 for c in counts]
        self._last[item] = ts
        level = _log_add(self._level.get(item, -math.inf), self.rates[0] * ts)
        self._level[item] = level
        top = self._top
        if item in top or len(top) < self.trending_size:
            top[item] = level
        else:
            weakest = min(top, key=top.__getitem__)
            if level > top[weakest]:
                del top[weakest]
                top[item] = level

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
        if self._ranked is None:  # asked per list, and replay-eval asks twice per event
            self._ranked = sorted(self._top, key=self._top.__getitem__, reverse=True)
        return self._ranked[:n]

    def forget_older_than(self, now: int, age_ms: int = DAY_MS) -> int:
        self._ranked = None
        stale = [i for i, t in self._last.items() if now - t > age_ms]
        for i in stale:
            del self._counts[i], self._last[i], self._level[i]
            self._top.pop(i, None)
        return len(stale)

    def __len__(self) -> int:
        return len(self._counts)


def _log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) without overflow."""
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi)) if lo > -math.inf else hi
