"""Prometheus metrics of the continual trainer (``streamrec trainer``), served on
``STREAMREC_TRAINER_METRICS_PORT``.

Kept apart from :mod:`stream_app.monitoring`: a worker never imports this module,
so worker endpoints show no trainer series, and the trainer's none of a worker's.
Labels take fixed values only (round results, ``model``: candidate or current,
``metric``: HR@10 or NDCG@10, invalid-event reasons).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from stream_app.events import REASONS

RESULTS = ("promoted", "rejected", "skipped", "failed")
HOLDOUT_METRICS = ("HR@10", "NDCG@10")

EVENTS = Counter("streamrec_trainer_events_total", "Valid events the trainer added to its window")
INVALID = Counter(
    "streamrec_trainer_invalid_events_total",
    "Input messages the trainer skipped as invalid (the workers dead-letter them), by reason",
    ["reason"],
)
WINDOW_EVENTS = Gauge("streamrec_trainer_window_events", "Events in the trainer's window")
WINDOW_USERS = Gauge("streamrec_trainer_window_users", "Users in the trainer's window")
ROUNDS = Counter(
    "streamrec_trainer_rounds_total",
    "Training rounds, by result (promoted, rejected by the gate, skipped, failed)",
    ["result"],
)
HOLDOUT = Gauge(
    "streamrec_trainer_holdout_quality",
    "Last round's next-item quality on the held-out recent events, by model and metric",
    ["model", "metric"],
)
TRAIN_SECONDS = Gauge(
    "streamrec_trainer_train_seconds", "Last round's duration: fine-tuning plus holdout ranking"
)
TRAIN_EXAMPLES = Gauge(
    "streamrec_trainer_train_examples", "Last round's training positions (next-item targets)"
)
VOCAB_ITEMS = Gauge("streamrec_trainer_vocab_items", "Items in the served model's vocabulary")
MODEL_AGE = Gauge(
    "streamrec_trainer_model_age_seconds",
    "Seconds since the served checkpoint was written (NaN before there is one)",
)


def _zero_known_labels() -> None:
    for result in RESULTS:
        ROUNDS.labels(result)
    for reason in REASONS:
        INVALID.labels(reason)
    for model in ("candidate", "current"):
        for metric in HOLDOUT_METRICS:
            HOLDOUT.labels(model, metric)


_zero_known_labels()
