"""Prometheus metrics, in base units, with bounded label values only.

Every worker serves them on ``STREAMREC_METRICS_PORT`` (prometheus_client's own
HTTP server, with its default process and Python collectors). Names follow the
Prometheus conventions: a ``streamrec_`` prefix, base units (``_seconds``),
counters ending in ``_total``, and labels whose values come from a fixed set
(event types, DLQ reasons, partitions), never a user or item id. Labelled series
whose values are known in advance are created at zero on import, so a dashboard
shows 0 rather than "no data" before the first occurrence. docs/operations/
observability.md lists them all; ``scripts/dashboard.py`` builds the
Grafana dashboard from these objects.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, Info

from models.base import EVENT_TYPES
from stream_app.events import REASONS

# 1 ms to 10 s: the latencies a streaming recommender cares about.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

EVENTS_CONSUMED = Counter(
    "streamrec_events_consumed_total", "Valid events consumed, by event type", ["event_type"]
)
INVALID_EVENTS = Counter(
    "streamrec_invalid_events_total", "Events rejected to the DLQ, by reason", ["reason"]
)
DLQ_MESSAGES = Counter("streamrec_dlq_messages_total", "Messages written to the DLQ")
REROUTED = Counter(
    "streamrec_rerouted_events_total", "Events forwarded to the partition owning their user"
)
DUPLICATES = Counter(
    "streamrec_replayed_events_total", "Events already applied to state (replays, repeated ids)"
)
USERS_EXPIRED = Counter(
    "streamrec_users_expired_total", "Users forgotten after STREAMREC_USER_TTL_S without events"
)
USERS_ERASED = Counter(
    "streamrec_users_erased_total", "Erasure requests carried out (streamrec forget)"
)
RECOMMENDATIONS = Counter("streamrec_recommendations_published_total", "Recommendations published")
EVENT_TO_PUBLISH = Histogram(
    "streamrec_event_to_publish_seconds",
    "From the event's own ts to its recommendation handed to the producer",
    buckets=LATENCY_BUCKETS,
)
CONSUME_TO_PUBLISH = Histogram(
    "streamrec_consume_to_publish_seconds",
    "From the worker receiving an event to its recommendation handed to the producer",
    buckets=LATENCY_BUCKETS,
)


def observe_published(consumed_at: float, event_ts_ms: int) -> None:
    """One recommendation was handed to the producer: both latencies, at the same moment.

    ``consumed_at`` is ``time.monotonic()`` when the agent received the event.
    """
    observe_published_many([(consumed_at, event_ts_ms)])


def observe_published_many(published: Sequence[tuple[float, int]]) -> None:
    """:func:`observe_published` of each ``(consumed_at, event_ts_ms)``, published
    together (a batch): one clock read, and each histogram updated per bucket hit."""
    if not published:
        return
    now_mono, now = time.monotonic(), time.time()
    RECOMMENDATIONS.inc(len(published))
    observe_many(CONSUME_TO_PUBLISH, [max(0.0, now_mono - c) for c, _ in published])
    observe_many(EVENT_TO_PUBLISH, [max(0.0, now - ts / 1000) for _, ts in published])


def observe_many(histogram: Histogram, amounts: Sequence[float]) -> None:
    """``histogram.observe(a)`` for each of ``amounts`` (no labels, no exemplars), with
    one increment per bucket hit and one of the sum, not two locked increments per
    amount. It reads prometheus_client's internals (``tests/test_monitoring.py``
    compares it with ``observe``).

    >>> h = Histogram("doc_latency_seconds", "", buckets=(0.1, 1), registry=None)
    >>> observe_many(h, [0.05, 0.5, 0.5, 7])
    >>> [b.get() for b in h._buckets], h._sum.get()
    ([1.0, 2.0, 1.0], 8.05)
    """
    hits: dict[int, int] = {}
    bounds = histogram._upper_bounds  # ascending, the last +Inf
    for a in amounts:
        i = bisect_left(bounds, a)  # the first bound >= a: observe's bucket
        hits[i] = hits.get(i, 0) + 1
    for i, n in hits.items():
        histogram._buckets[i].inc(n)
    histogram._sum.inc(sum(amounts))


# --- Kafka consumer and state ---------------------------------------------------
CONSUMER_LAG = Gauge(
    "streamrec_consumer_lag_messages",
    "Input messages behind: the partition's end offset minus the committed offset",
    ["partition"],
)
STATE_USERS = Gauge("streamrec_state_users", "Users held in this worker's users table")
STATE_RESTORE = Histogram(
    "streamrec_state_restore_seconds",
    "From a partition assignment to its tables restored from their changelogs",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)

# --- model serving -------------------------------------------------------------
BATCH_SIZE = Histogram(
    "streamrec_batcher_batch_size",
    "Requests per micro-batch",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
BATCH_QUEUE_WAIT = Histogram(
    "streamrec_batcher_queue_wait_seconds",
    "From a scoring request's arrival to its batch starting",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BATCH_INFERENCE = Histogram(
    "streamrec_batcher_inference_seconds",
    "Time to score one micro-batch",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BATCH_QUEUE_DEPTH = Gauge("streamrec_batcher_queue_depth", "Scoring requests waiting for a batch")
IN_FLIGHT = Gauge("streamrec_events_in_flight", "Events consumed and not yet published")
MODEL = Info("streamrec_model", "The model serving recommendations")
MODEL_RELOADS = Counter(
    "streamrec_model_reloads_total", "Checkpoint hot reloads, by result", ["result"]
)


def export_model(scorer: Any) -> None:
    """``streamrec_model_info{name,version,device}`` for the scorer now serving."""
    device = str(getattr(scorer, "device", "cpu"))
    MODEL.info({"name": scorer.name, "version": scorer.version, "device": device})


class BatcherMetrics:
    """Exports :class:`models.serving.microbatch.MicroBatcher` observations."""

    def on_batch(self, size: int, queue_waits: Sequence[float], inference_s: float) -> None:
        BATCH_SIZE.observe(size)
        for w in queue_waits:
            BATCH_QUEUE_WAIT.observe(w)
        BATCH_INFERENCE.observe(inference_s)

    def on_depth(self, depth: int) -> None:
        BATCH_QUEUE_DEPTH.set(depth)


# --- online adjustment ---------------------------------------------------------
LIVE_EVALUATED = Counter(
    "streamrec_live_evaluated_events_total",
    "Events scored against the list last published to their user (prequential)",
)
LIVE_HITS = Counter(
    "streamrec_live_hits_total", "Prequential hits in the top 10, by list", ["list"]
)
LIVE_NDCG = Counter(
    "streamrec_live_ndcg_sum_total", "Sum of prequential NDCG@10, by list", ["list"]
)
LIVE_WINDOW = Gauge(
    "streamrec_live_quality",
    "Prequential quality over the last 1,000 evaluated events, by list and metric",
    ["list", "metric"],
)
PURCHASE_EVALUATED = Counter(
    "streamrec_live_purchase_evaluated_total",
    "Purchase-propensity predictions scored against the user's next event",
)
PURCHASE_QUALITY = Gauge(
    "streamrec_live_purchase_quality",
    "Prequential quality of the purchase-propensity head, by metric and window",
    ["metric", "window"],
)
ADJUSTER_EXAMPLES = Gauge("streamrec_adjuster_examples", "Examples the adjuster has learned")
DRIFT_DETECTIONS = Counter(
    "streamrec_drift_detections_total", "Drift detected, by watched signal", ["signal"]
)
ADJUSTER_RESETS = Counter(
    "streamrec_adjuster_resets_total", "Adjuster resets after a drift in its loss"
)


_CONSUMED: dict[str, Any] = {}


def consumed(event_type: str) -> Any:
    """``EVENTS_CONSUMED``'s child for one event type (``labels()`` costs more than ``inc()``)."""
    child = _CONSUMED.get(event_type)
    if child is None:
        child = _CONSUMED[event_type] = EVENTS_CONSUMED.labels(event_type)
    return child


def _zero_known_labels() -> None:
    """Create every labelled series whose label values are known, at zero."""
    for event_type in EVENT_TYPES:
        EVENTS_CONSUMED.labels(event_type)
    for reason in REASONS:
        INVALID_EVENTS.labels(reason)
    for result in ("ok", "failed"):
        MODEL_RELOADS.labels(result)
    for signal in ("hit_rate", "loss"):
        DRIFT_DETECTIONS.labels(signal)
    for name in ("adjusted", "base"):
        LIVE_HITS.labels(name)
        LIVE_NDCG.labels(name)
    for name in ("accuracy", "precision", "recall", "f1", "auc", "brier"):
        for window in ("cumulative", "last_1000"):
            PURCHASE_QUALITY.labels(name, window)


_zero_known_labels()
