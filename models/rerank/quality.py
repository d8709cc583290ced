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
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from river import metrics

_DISCOUNT = [1.0 / math.log2(rank + 2) for rank in range(1000)]


def hit_ndcg(ranked: Sequence[str], target: str, k: int = 10) -> tuple[float, float]:
    """HR@k and NDCG@k of one list for one target (a single relevant item)."""
    if target not in ranked:  # the usual case, and a raised ValueError costs more
        return 0.0, 0.0
    rank = ranked.index(target)
    if rank >= k:
        return 0.0, 0.0
    return 1.0, _DISCOUNT[rank] if rank < len(_DISCOUNT) else 1.0 / math.log2(rank + 2)


class Prequential:
    """Cumulative and sliding-window HR@k / NDCG@k (``window=0``: cumulative only)."""

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
        return self.record(h, n)

    def merge(self, other: Prequential) -> None:
        """Add ``other``'s events (another worker's): the cumulative figures only."""
        self.events += other.events
        self._hr += other._hr
        self._ndcg += other._ndcg

    def miss(self) -> None:
        """A list known not to hold its target (replay-eval's blends, mostly)."""
        self.record(0.0, 0.0)

    def record(self, h: float, n: float) -> tuple[float, float]:
        """Count one list's HR and NDCG."""
        self.events += 1
        self._hr += h
        self._ndcg += n
        if not self.window:  # cumulative only (replay-eval's baselines)
            return h, n
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


class LogitHistogramAUC:
    """ROC AUC of every prediction so far, in constant memory.

    Predictions are binned by log-odds (``bins`` over [-12, 12]); pairs in the
    same bin count one half, so the error is at most the share of pairs falling
    in one bin. river's ``ROCAUC`` spaces its thresholds evenly in [0, 1], which
    puts most of a rare event's predictions in its first bin; its exact
    ``RollingROCAUC`` keeps every prediction of its window.

    >>> auc = LogitHistogramAUC()
    >>> for y, p in [(True, 0.9), (False, 0.2), (True, 0.3), (False, 0.4)]:
    ...     auc.update(y, p)
    >>> auc.get()
    0.75
    """

    def __init__(self, bins: int = 960, span: float = 12.0) -> None:
        self.bins = bins
        self.span = span
        # Python lists: one += on a list is several times cheaper than on a numpy array.
        self.counts = {True: [0] * bins, False: [0] * bins}

    def update(self, y: bool, p: float) -> None:
        p = min(max(p, 1e-12), 1 - 1e-12)
        z = min(max(math.log(p / (1 - p)), -self.span), self.span)
        b = min(int((z + self.span) / (2 * self.span) * self.bins), self.bins - 1)
        self.counts[bool(y)][b] += 1

    def get(self) -> float:
        pos = np.array(self.counts[True], dtype=np.int64)
        neg = np.array(self.counts[False], dtype=np.int64)
        n_pos, n_neg = int(pos.sum()), int(neg.sum())
        if not n_pos or not n_neg:
            return 0.0
        below = np.cumsum(neg) - neg  # negatives in lower bins
        return float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))


class ClassificationQuality:
    """Prequential accuracy, precision, recall, F1, ROC AUC and Brier score (the MSE
    of the probability) of P(y) predictions, cumulative and over the last
    ``window`` predictions (river's metrics; ``RollingROCAUC`` for the window's AUC).
    A prediction counts as positive when ``p >= threshold``.

    The window's other metrics are counted from its last predictions when read:
    every prediction is added, the summary is read every hundred, and river's
    rolling wrappers would revert one prediction per prediction added.

    >>> q = ClassificationQuality(threshold=0.5, window=2)
    >>> for y, p in [(True, 0.8), (False, 0.6), (False, 0.1), (True, 0.4)]:
    ...     q.add(y, p)
    >>> s = q.summary()
    >>> s["accuracy"], s["precision"], s["recall"], s["auc"], round(s["brier"], 4)
    (0.5, 0.5, 0.5, 0.75, 0.1925)
    >>> s["window"]["accuracy"], s["window"]["auc"], s["positives"], s["events"]
    (0.5, 1.0, 2, 4)
    """

    NAMES = ("accuracy", "precision", "recall", "f1", "auc", "brier")

    def __init__(self, threshold: float = 0.5, window: int = 1000) -> None:
        self.threshold = threshold
        self.events = 0
        self.positives = 0
        self.last: tuple[bool, float] | None = None  # the latest (y, p)
        self._cm = metrics.ConfusionMatrix()  # shared by the four label metrics
        self._auc = LogitHistogramAUC()
        self._brier = metrics.MSE()
        self._recent: deque[tuple[bool, bool, float]] = deque(maxlen=window)
        self._window_auc = metrics.RollingROCAUC(window_size=window)
        self.cumulative = _label_metrics(self._cm) | {"auc": self._auc, "brier": self._brier}

    def add(self, y: bool, p: float) -> None:
        y = bool(y)
        self.last = (y, p)
        self.events += 1
        self.positives += y
        predicted = p >= self.threshold
        self._cm.update(y, predicted)
        self._auc.update(y, p)
        self._brier.update(float(y), p)
        self._recent.append((y, predicted, (y - p) ** 2))
        self._window_auc.update(y, p)

    @property
    def window(self) -> dict[str, Any]:
        """The metrics of the last ``window`` predictions, counted now."""
        cm = metrics.ConfusionMatrix()
        for (y, predicted), n in Counter((y, pr) for y, pr, _ in self._recent).items():
            cm.update(y, predicted, w=n)
        recent = self._recent
        brier = sum(e for _, _, e in recent) / len(recent) if recent else 0.0
        return _label_metrics(cm) | {"auc": self._window_auc, "brier": _Fixed(brier)}

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {n: float(self.cumulative[n].get()) for n in self.NAMES}
        window = self.window
        out["window"] = {n: float(window[n].get()) for n in self.NAMES}
        out.update(events=self.events, positives=self.positives, threshold=self.threshold)
        return out


def _label_metrics(cm: metrics.ConfusionMatrix) -> dict[str, Any]:
    return {
        "accuracy": metrics.Accuracy(cm=cm),
        "precision": metrics.Precision(cm=cm),
        "recall": metrics.Recall(cm=cm),
        "f1": metrics.F1(cm=cm),
    }


class _Fixed(NamedTuple):
    """A value read like a river metric (``.get()``)."""

    value: float

    def get(self) -> float:
        return self.value
