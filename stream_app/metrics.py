"""Prometheus metrics, in base units, with bounded label values only."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram, Info

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
    "From the event's own ts to publishing its recommendation",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# --- model serving (#4) -------------------------------------------------------
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


class BatcherMetrics:
    """Exports :class:`models.microbatch.MicroBatcher` observations."""

    def on_batch(self, size: int, queue_waits: Sequence[float], inference_s: float) -> None:
        BATCH_SIZE.observe(size)
        for w in queue_waits:
            BATCH_QUEUE_WAIT.observe(w)
        BATCH_INFERENCE.observe(inference_s)

    def on_depth(self, depth: int) -> None:
        BATCH_QUEUE_DEPTH.set(depth)


# --- online adjustment (#7) --------------------------------------------------
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
ADJUSTER_EXAMPLES = Gauge("streamrec_adjuster_examples", "Examples the adjuster has learned")
DRIFT_DETECTIONS = Counter(
    "streamrec_drift_detections_total", "Drift detected, by watched signal", ["signal"]
)
ADJUSTER_RESETS = Counter(
    "streamrec_adjuster_resets_total", "Adjuster resets after a drift in its loss"
)
