"""Known transient Kafka client errors are logged at INFO; real errors stay ERROR."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator

import pytest

from stream_app import logs
from stream_app.settings import Settings

TRANSIENT = (
    "aiokafka.consumer.fetcher",
    "Failed fetch offsets from 1: [Error 6] NotLeaderForPartitionError: "
    "TopicPartition(topic='streamrec.recommendations', partition=2)",
)
COORDINATOR = (
    "aiokafka.consumer.group_coordinator",
    "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError",
)


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """Logging configured as the worker's, writing to a string."""
    stream = io.StringIO()
    saved = logging.root.handlers[:], logging.root.level
    yield stream
    logging.root.handlers[:] = saved[0]
    logging.root.setLevel(saved[1])


def configure(stream: io.StringIO, level: str) -> None:
    config = logs.dict_config(Settings(log_level=level))  # type: ignore[arg-type]
    logging.config.dictConfig(config)
    handler = logging.root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)


def test_transient_client_errors_are_info_at_the_default_level(output: io.StringIO) -> None:
    configure(output, "info")
    for name, message in (TRANSIENT, COORDINATOR):
        logging.getLogger(name).error(message)
    lines = output.getvalue().splitlines()
    assert len(lines) == 2
    assert all(" INFO aiokafka." in ln for ln in lines), lines


def test_transient_client_errors_are_hidden_at_warn(output: io.StringIO) -> None:
    configure(output, "warn")
    logging.getLogger(TRANSIENT[0]).error(TRANSIENT[1])
    logging.getLogger("aiokafka.producer.sender").warning(
        "Got error produce response on topic-partition TopicPartition(topic='t', partition=0), "
        "retrying. Error: <class 'aiokafka.errors.NotLeaderForPartitionError'>"
    )
    assert output.getvalue() == ""


def test_real_errors_are_still_errors(output: io.StringIO) -> None:
    configure(output, "warn")
    logging.getLogger("aiokafka").error("Unable connect to node with id 1: [Errno 111]")
    logging.getLogger("aiokafka.consumer.fetcher").error(
        "Failed fetch offsets from 1: [Error 29] TopicAuthorizationFailedError"
    )
    # Our own lines are never rewritten, whatever they quote.
    logging.getLogger("stream_app.batch_loop").error("NotLeaderForPartitionError in a batch")
    lines = output.getvalue().splitlines()
    assert len(lines) == 3
    assert all(" ERROR " in ln for ln in lines), lines
