"""How long the broker may hold the worker's fetch open when it has no data.

Faust creates the worker's consumer with ``fetch_max_wait_ms=1500``, hard-coded
(``AIOKafkaConsumerThread._create_worker_consumer``,
faust/transport/drivers/aiokafka.py:615 in 0.15.3). The consumer sends every
request to the broker on one connection, and the broker answers a connection's
requests in order: whatever the worker asks while an empty fetch is held waits
for it. During a restore the worker's consumer fetches every assigned partition
it has no buffered records of, most of them empty, so each offset lookup of
Faust's recovery (highwaters, then earliest offsets) waited up to 1.5 s, and so
did the first fetch of input after the recovery. :func:`apply` sets the wait to
``STREAMREC_FETCH_MAX_WAIT_MS`` on the consumer Faust creates, before it starts.
A fetch still returns as soon as one record is there: only an idle worker sees a
difference, as more (empty) fetches per second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

OWNER: Final = AIOKafkaConsumerThread
NAME: Final = "_create_worker_consumer"
upstream: Final[Callable[..., Any]] = AIOKafkaConsumerThread._create_worker_consumer


def apply(fetch_max_wait_ms: int) -> None:
    """Give every worker consumer Faust creates from now on this fetch wait."""

    def create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
        consumer = upstream(self, transport)
        consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read by the fetcher at start
        return consumer

    setattr(OWNER, NAME, create_worker_consumer)
