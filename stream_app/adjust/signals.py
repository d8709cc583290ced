"""Live signals the features read: item popularity over sliding windows, and when
each item was last touched by anyone. Decayed counters keep it O(1) per event
and bounded by the catalogue (items unseen for a day are dropped on sweeps).

>>> s = ItemSignals(half_lives_s=(60.0,))
>>> s.observe("a", 0); s.observe("a", 0); s.observe("b", 30_000)
>>> round(s.popularity("a", 60_000)[0], 3), round(s.popularity("b", 60_000)[0], 3)
(1.0, 0.707)
>>> s.trending(60_000, 1)
['a']
"""

from __future__ import annotations

import heapq
import math

DAY_MS = 86_400_000


class ItemSignals:
    def __init__(
        self, half_lives_s: tuple[float, ...] = (300.0, 3600.0), refresh_ms: int = 10_000
    ) -> None:
        self.rates = [math.log(2) / (h * 1000) for h in half_lives_s]
        self.refresh_ms = refresh_ms
        self._counts: dict[str, list[float]] = {}  # item -> decayed counts at last_ts
        self._last: dict[str, int] = {}
        self._trend: tuple[int, int, list[str]] = (-(10**18), 0, [])  # (at, n, items)

    def observe(self, item: str, ts: int) -> None:
        counts = self.popularity(item, ts)
        self._counts[item] = [c + 1.0 for c in counts]
        self._last[item] = ts

    def popularity(self, item: str, now: int) -> list[float]:
        counts = self._counts.get(item)
        if counts is None:
            return [0.0] * len(self.rates)
        dt = max(0, now - self._last[item])
        return [c * math.exp(-r * dt) for c, r in zip(counts, self.rates, strict=True)]

    def last_seen(self, item: str) -> int | None:
        return self._last.get(item)

    def trending(self, now: int, n: int) -> list[str]:
        """The ``n`` items with the highest short-window popularity (recomputed at most
        every ``refresh_ms`` of stream time: a scan of every item)."""
        at, size, items = self._trend
        if now - at < self.refresh_ms and size >= n:
            return items[:n]
        size = max(n, size if now - at < self.refresh_ms else 0, 10)
        rate = self.rates[0]
        items = heapq.nlargest(
            size,
            self._counts,
            key=lambda i: self._counts[i][0] * math.exp(-rate * max(0, now - self._last[i])),
        )
        self._trend = (now, size, items)
        return items[:n]

    def forget_older_than(self, now: int, age_ms: int = DAY_MS) -> int:
        stale = [i for i, t in self._last.items() if now - t > age_ms]
        for i in stale:
            del self._counts[i], self._last[i]
        return len(stale)

    def __len__(self) -> int:
        return len(self._counts)
