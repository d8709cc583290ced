"""The worker's periodic one-line summary, instead of a line per event.

Counts come from the worker's Prometheus counters (one source of truth with
``/metrics``); each summary reports what changed since the previous one.
Nothing in it identifies a user: only counts, rates and partition numbers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

log = logging.getLogger("streamrec.summary")

# Prometheus sample name -> summary field (counters are summed over their labels).
COUNTERS = {
    "streamrec_events_consumed_total": "events",
    "streamrec_invalid_events_total": "invalid",
    "streamrec_recommendations_published_total": "published",
    "streamrec_rerouted_events_total": "rerouted",
    "streamrec_replayed_events_total": "replayed",
}
IN_FLIGHT = "streamrec_events_in_flight"


def sample_sums(registry: CollectorRegistry = REGISTRY) -> dict[str, float]:
    """Each wanted sample summed over its label values."""
    wanted = {*COUNTERS, IN_FLIGHT}
    sums: dict[str, float] = {}
    for metric in registry.collect():
        for s in metric.samples:
            if s.name in wanted:
                sums[s.name] = sums.get(s.name, 0.0) + s.value
    return sums


class Summary:
    """Deltas of the worker's counters between two calls of :meth:`fields`.

    >>> from prometheus_client import Counter
    >>> reg = CollectorRegistry()
    >>> c = Counter("streamrec_events_consumed", "", ["event_type"], registry=reg)
    >>> clock = iter([0.0, 2.0]).__next__
    >>> s = Summary(registry=reg, clock=clock)
    >>> c.labels("click").inc(10)
    >>> f = s.fields()
    >>> f["events"], f["rate_per_s"], f["published"]
    (10, 5.0, 0)
    """

    def __init__(
        self,
        partitions: Callable[[], list[int]] = list,
        users: Callable[[], int | None] = lambda: None,
        registry: CollectorRegistry = REGISTRY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._partitions = partitions
        self._users = users
        self._registry = registry
        self._clock = clock
        self._last = sample_sums(registry)
        self._t = clock()

    def fields(self) -> dict[str, Any]:
        now, sums = self._clock(), sample_sums(self._registry)
        elapsed = max(now - self._t, 1e-9)
        out: dict[str, Any] = {"interval_s": round(elapsed, 1)}
        for name, field in COUNTERS.items():
            out[field] = int(sums.get(name, 0.0) - self._last.get(name, 0.0))
        out["rate_per_s"] = round(out["events"] / elapsed, 1)
        out["in_flight"] = int(sums.get(IN_FLIGHT, 0.0))
        out["partitions"] = self._partitions()
        out["users_approx"] = self._users()
        self._last, self._t = sums, now
        return out

    def log(self) -> None:
        f = self.fields()
        text = " ".join(
            f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in f.items()
        )
        log.info("summary %s", text, extra={"fields": {"summary": True, **f}})


def local_users(table: Any) -> int | None:
    """Users held by this worker's active partitions, cheaply (no scan): RocksDB's
    ``estimate-num-keys``, which counts a key's unflushed overwrites too and so runs
    high until memtables flush; an exact count for the memory store; else None."""
    try:
        store = table.data
        if hasattr(store, "_dbs_for_actives"):  # Faust's RocksDB store
            return sum(
                int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
                for db in store._dbs_for_actives()
            )
        return len(store.data) if hasattr(store, "data") else None
    except Exception:  # a summary must never take the worker down
        return None
