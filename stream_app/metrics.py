"""Prometheus metrics, in base units, with bounded label values only."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
RECOMMENDATIONS = Counter("streamrec_recommendations_published_total", "Recommendations published")
EVENT_TO_PUBLISH = Histogram(
    "streamrec_event_to_publish_seconds",
    "From the event's own ts to publishing its recommendation",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
