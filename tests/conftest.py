"""Shared fixtures: one real Kafka broker per test session, and workers as processes.

Set ``STREAMREC_TEST_BOOTSTRAP`` to run the broker-backed tests against an
existing cluster instead of the embedded one.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_app.kafka.broker import EmbeddedBroker
from stream_app.processes import WorkerProcess
from stream_app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    external = os.environ.get("STREAMREC_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    port = free_port()
    settings = Settings(broker_port=port, broker_controller_port=free_port())
    with EmbeddedBroker(settings) as broker:
        yield broker.bootstrap


class Stack:
    """Isolated topic names, consumer group and state dir on the shared broker."""

    def __init__(self, bootstrap: str, tmp: Path, **overrides: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.tmp = tmp
        self.env_vars = {
            "STREAMREC_KAFKA_BOOTSTRAP": bootstrap,
            "STREAMREC_APP_ID": f"streamrec-test-{tag}",
            "STREAMREC_INPUT_TOPIC": f"t{tag}.events",
            "STREAMREC_OUTPUT_TOPIC": f"t{tag}.recommendations",
            "STREAMREC_DLQ_TOPIC": f"t{tag}.events.dlq",
            "STREAMREC_CONTROL_TOPIC": f"t{tag}.control",
            "STREAMREC_AUDIT_TOPIC": f"t{tag}.audit",
            "STREAMREC_PARTITIONS": "4",
            "STREAMREC_LOG_LEVEL": "info",
            **overrides,
        }
        self.settings = Settings.from_env(self.env_vars)
        self.workers: list[WorkerProcess] = []

    def worker(self, n: int = 0) -> WorkerProcess:
        env = dict(os.environ)
        env.update(self.env_vars)
        env["STREAMREC_DATA_DIR"] = str(self.tmp / f"worker{n}")
        env["STREAMREC_WEB_PORT"] = str(free_port())
        env["STREAMREC_METRICS_PORT"] = str(free_port())
        w = WorkerProcess(env, self.tmp / f"worker{n}.log", cwd=ROOT)
        self.workers.append(w)
        return w

    def close(self) -> None:
        for w in self.workers:
            w.stop()


@pytest.fixture
def stack(bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(bootstrap, tmp_path)
    yield s
    s.close()


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")
