"""Prequential recommendation quality: each event is scored against the list
published to its user before it.

>>> hit_ndcg(["a", "b", "c"], "b", k=10)
(1.0, 0.6309297535714575)
>>> hit_ndcg(["a", "b", "c"], "z", k=10)
(0.0, 0.0)
>>> q = Prequential(k=2)
>>> for target in "abc":
...     _ = q.add(["a", "b"], target)
>>> round(q.hr, 4), round(q.ndcg, 4), q.events
(0.6667, 0.5436, 3)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence


def hit_ndcg(ranked: Sequence[str], target: str, k: int = 10) -> tuple[float, float]:
    """HR@k and NDCG@k of one list for one target (a single relevant item)."""
    for rank, item in enumerate(ranked[:k]):
        if item == target:
            return 1.0, 1.0 / math.log2(rank + 2)
    return 0.0, 0.0


class Prequential:
    """Cumulative and sliding-window HR@k / NDCG@k."""

    def __init__(self, k: int = 10, window: int = 1000) -> None:
        self.k = k
        self.events = 0
        self._hr = 0.0
        self._ndcg = 0.0
        self.window = window
        self._recent: deque[tuple[float, float]] = deque()
        self._window_hr = 0.0  # running sums over _recent: O(1) per event
        self._window_ndcg = 0.0

    def add(self, ranked: Sequence[str], target: str) -> tuple[float, float]:
        h, n = hit_ndcg(ranked, target, self.k)
        self.events += 1
        self._hr += h
        self._ndcg += n
        self._recent.append((h, n))
        self._window_hr += h
        self._window_ndcg += n
        if len(self._recent) > self.window:
            old_h, old_n = self._recent.popleft()
            self._window_hr -= old_h
            self._window_ndcg -= old_n
        return h, n

    @property
    def hr(self) -> float:
        return self._hr / self.events if self.events else 0.0

    @property
    def ndcg(self) -> float:
        return self._ndcg / self.events if self.events else 0.0

    @property
    def window_hr(self) -> float:
        return self._window_hr / len(self._recent) if self._recent else 0.0

    @property
    def window_ndcg(self) -> float:
        return self._window_ndcg / len(self._recent) if self._recent else 0.0

    def summary(self) -> dict[str, float | int]:
        return {f"HR@{self.k}": self.hr, f"NDCG@{self.k}": self.ndcg, "events": self.events}
