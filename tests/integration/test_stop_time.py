"""SIGTERM on a worker with a backlog: it finishes the events it holds, publishes
their recommendations, commits and exits 0 within seconds; its successor serves
the rest, so every event gets exactly one recommendation."""

from __future__ import annotations

import time

import pytest

from stream_app.harness import Stack
from tests.integration.kafka_io import decoded, read_n, send_all
from tests.integration.test_pipeline import event

pytestmark = [pytest.mark.broker, pytest.mark.slow]

EVENTS = 8_000
STOP_BOUND_S = 20  # generous for a loaded 2-core machine; a few seconds when idle


async def test_sigterm_on_a_loaded_worker_stops_within_seconds_losing_nothing(
    stack: Stack,
) -> None:
    s = stack.settings
    worker = stack.worker().start()
    worker.wait_ready()
    now = int(time.time() * 1000)
    msgs = [
        (f"u{i % 997}".encode(), event(f"u{i % 997}", f"i{i % 301}", now + i, f"e{i}"))
        for i in range(EVENTS)
    ]
    await send_all(s.bootstrap, s.input_topic, msgs)
    await read_n(s.bootstrap, s.output_topic, 200, timeout=120)  # busy with the backlog
    stopping = time.monotonic()
    code = worker.stop(timeout=60)
    stop_s = time.monotonic() - stopping
    served = len(await read_n(s.bootstrap, s.output_topic, EVENTS, timeout=5))
    print(f"stopped in {stop_s:.1f} s with {EVENTS - served} of {EVENTS} events still waiting")
    assert code == 0, worker.log_tail()
    assert stop_s < STOP_BOUND_S
    assert served < EVENTS  # it was stopped under load, not after the backlog

    worker.start()
    recs = decoded(await read_n(s.bootstrap, s.output_topic, EVENTS, timeout=300, settle=3))
    ids = [r["source_event_id"] for r in recs]
    assert set(ids) == {f"e{i}" for i in range(EVENTS)}
    assert len(ids) == len(set(ids))  # a clean stop: nothing recommended twice
