"""Metrics updated a batch at a time agree with prometheus_client's own updates."""

from __future__ import annotations

import random

import pytest
from prometheus_client import Histogram

from stream_app import monitoring


def _histogram() -> Histogram:
    return Histogram("t_seconds", "", buckets=monitoring.LATENCY_BUCKETS, registry=None)


def test_observe_many_is_observe_of_each() -> None:
    rng = random.Random(7)
    amounts = [rng.expovariate(20) for _ in range(2_000)]
    amounts += [*monitoring.LATENCY_BUCKETS, 0.0, 11.0]  # on each bound, and past the last
    one, many = _histogram(), _histogram()
    for a in amounts:
        one.observe(a)
    monitoring.observe_many(many, amounts)
    assert [b.get() for b in many._buckets] == [b.get() for b in one._buckets]
    assert many._sum.get() == pytest.approx(one._sum.get(), rel=1e-12)


def test_published_together_counts_each() -> None:
    before = monitoring.RECOMMENDATIONS._value.get()
    buckets = [b.get() for b in monitoring.EVENT_TO_PUBLISH._buckets]
    monitoring.observe_published_many([(0.0, 0), (0.0, 0), (0.0, 0)])
    monitoring.observe_published_many([])
    assert monitoring.RECOMMENDATIONS._value.get() == before + 3
    after = [b.get() for b in monitoring.EVENT_TO_PUBLISH._buckets]
    assert after[-1] == buckets[-1] + 3  # events from 1970: past every finite bound
