"""Shared fixtures: one real Kafka broker per test session, and workers as processes
(:mod:`stream_app.harness`).

Set ``STREAMREC_TEST_BOOTSTRAP`` to run the broker-backed tests against an
existing cluster instead of the embedded one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_app.harness import Stack, broker_running, isolated_env, local_broker_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    external = os.environ.get("STREAMREC_TEST_BOOTSTRAP")
    with broker_running(local_broker_settings(kafka_bootstrap=external)) as servers:
        yield servers


def stack_env(bootstrap: str, **overrides: object) -> dict[str, str]:
    """A test's ``STREAMREC_*`` variables: fresh topics and consumer group on the
    shared broker; ``overrides`` are further settings fields."""
    fields = {"kafka_bootstrap": bootstrap, "partitions": 4, "log_level": "info", **overrides}
    return isolated_env("streamrec-test", **fields)


def new_stack(bootstrap: str, tmp: Path, **overrides: object) -> Stack:
    """Workers of one test, on its own topics and with state under ``tmp``."""
    return Stack(stack_env(bootstrap, **overrides), tmp, cwd=ROOT)


@pytest.fixture
def stack(bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    with new_stack(bootstrap, tmp_path) as s:
        yield s


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")
