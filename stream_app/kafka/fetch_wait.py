"""How long, and for how much input, the broker holds the worker's fetch.

Faust creates the worker's consumer with ``fetch_max_wait_ms=1500``, hard-coded
(``AIOKafkaConsumerThread._create_worker_consumer``,
faust/transport/drivers/aiokafka.py:615 in 0.15.3), and aiokafka's default
``fetch_min_bytes=1``. :func:`apply` sets both, from ``STREAMREC_FETCH_MAX_WAIT_MS``
and ``STREAMREC_FETCH_MIN_BYTES``, on the consumer Faust creates, before it starts.

- **The wait.** The consumer sends every request to the broker on one connection,
  and the broker answers a connection's requests in order: whatever the worker
  asks while a fetch is held waits for it. During a restore the worker's consumer
  fetches every assigned partition it has no buffered records of, most of them
  empty, so each offset lookup of Faust's recovery (highwaters, then earliest
  offsets) waited up to 1.5 s, and so did the first fetch of input after the
  recovery.
- **The minimum.** With ``fetch_min_bytes=1`` (the default) the broker answers as
  soon as one record is there: at a moderate input rate every few records wake the
  consumer's thread, then the batch loop, and each small batch pays a produce round
  trip and its acks. Held until 16 KiB or 10 ms, at 1,000 events/s the Markov
  worker used about a third less CPU per event, for about 5 ms more latency, and
  an idle worker sent an empty fetch every 10 ms (about 0.08 of a core, against
  0.016 at 100): docs/benchmarks.md, "Small batches cost twice".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

OWNER: Final = AIOKafkaConsumerThread
NAME: Final = "_create_worker_consumer"
upstream: Final[Callable[..., Any]] = AIOKafkaConsumerThread._create_worker_consumer


def apply(fetch_max_wait_ms: int, fetch_min_bytes: int = 1) -> None:
    """Give every worker consumer Faust creates from now on this fetch wait and minimum."""

    def create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
        consumer = upstream(self, transport)
        # Both read by the fetcher when the consumer starts.
        consumer._fetch_max_wait_ms = fetch_max_wait_ms
        consumer._fetch_min_bytes = fetch_min_bytes
        return consumer

    setattr(OWNER, NAME, create_worker_consumer)
