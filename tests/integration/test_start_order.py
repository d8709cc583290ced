"""A worker started before its broker waits for it, then serves every event; one
whose broker never comes exits with a clear message (:mod:`stream_app.kafka.wait`)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream_app.harness import local_broker_settings, settings_env
from stream_app.kafka.broker import EmbeddedBroker
from stream_app.kafka.wait import EXIT_UNAVAILABLE
from tests.conftest import ROOT, new_stack
from tests.integration.kafka_io import decoded, read_n, send_all
from tests.integration.test_pipeline import event

pytestmark = [pytest.mark.broker, pytest.mark.slow]

BROKER_LATE_S = 20


def test_worker_started_before_its_broker_serves_every_event(tmp_path: Path) -> None:
    base = local_broker_settings()  # its own broker, not yet running
    stack = new_stack(base.bootstrap, tmp_path, kafka_retry_max_s=4)
    broker = EmbeddedBroker(base, data_dir=tmp_path / "broker")
    try:
        worker = stack.worker().start()
        time.sleep(BROKER_LATE_S)
        assert worker.running, worker.log_tail()
        assert f"waiting for Kafka at {base.bootstrap}, attempt 3" in worker.log()
        broker.start()
        worker.wait_ready(timeout=180)
        s = stack.settings
        now = int(time.time() * 1000)
        msgs = [
            (f"u{i % 23}".encode(), event(f"u{i % 23}", f"i{i % 31}", now + i, f"e{i}"))
            for i in range(300)
        ]
        asyncio.run(send_all(s.bootstrap, s.input_topic, msgs))
        recs = decoded(asyncio.run(read_n(s.bootstrap, s.output_topic, len(msgs), timeout=120)))
        assert {r["source_event_id"] for r in recs} == {f"e{i}" for i in range(len(msgs))}
        # Once the broker answers, a healthy start: transient client errors (leaders
        # not yet elected, the coordinator loading) are not shown as ERROR.
        started = worker.log().rsplit("waiting for Kafka", 1)[1]
        assert [ln for ln in started.splitlines() if " ERROR " in ln] == []
        assert worker.stop() == 0, worker.log_tail()
    finally:
        stack.stop()
        broker.stop()


def test_worker_whose_broker_never_comes_exits_with_a_clear_message(tmp_path: Path) -> None:
    closed = local_broker_settings()  # nothing listens on its ports
    stack = new_stack(closed.bootstrap, tmp_path, kafka_wait_s=3, kafka_retry_max_s=1)
    with stack:
        worker = stack.worker().start()
        assert worker.proc is not None
        code = worker.proc.wait(timeout=60)
        log = worker.log()
    assert code == EXIT_UNAVAILABLE, log
    assert f"waiting for Kafka at {closed.bootstrap}, attempt 2" in log
    assert f"Kafka at {closed.bootstrap} did not answer within 3 s" in log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    "argv", [["produce", "--limit", "1"], ["consume", "--limit", "1"], ["forget", "u1"]]
)
def test_clients_wait_for_kafka_then_give_up_clearly(argv: list[str]) -> None:
    closed = local_broker_settings()
    env = {
        **os.environ,
        **settings_env(kafka_bootstrap=closed.bootstrap, kafka_wait_s=2, kafka_retry_max_s=1),
    }
    run = subprocess.run(
        [sys.executable, "-m", "stream_app", *argv],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == EXIT_UNAVAILABLE, run.stderr
    assert f"waiting for Kafka at {closed.bootstrap}, attempt 1" in run.stderr
    assert f"streamrec: Kafka at {closed.bootstrap} did not answer within 2 s" in run.stderr
    assert "Traceback" not in run.stderr
