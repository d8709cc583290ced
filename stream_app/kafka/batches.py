"""Send a batch worker's records as one Kafka record batch per topic-partition.

Faust's per-record send (``app.producer.send``: a future, a serialisation check
and a metadata lookup per record) cost the batch worker more CPU than a record's
share of the broker's work. :class:`BatchSender` appends each topic-partition's
records to aiokafka ``BatchBuilder`` s and submits each full builder with
``send_batch``, on the same (idempotent) producer that Faust uses, so a
partition's records keep their order with anything else sent there. The future
of a builder resolves to the metadata of its first record.

A record without a partition goes where the producer's default partitioner
(murmur2 of the key, as the Java client) would put it
(:func:`stream_app.routing.partition_for`); one without a key, to a random one.

The producer is private to Faust's aiokafka driver (``_ensure_producer``), and
aiokafka lets only one builder per topic-partition wait to be sent: a second one
waits until the first is taken by the sender, so builders are made large
(``STREAMREC_PRODUCER_BATCH_BYTES``), one request carrying thousands of records.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from typing import Any

from aiokafka.producer.message_accumulator import BatchBuilder

from stream_app.outgoing import Header
from stream_app.routing import partition_for

# topic, partition or None, key, value, headers
Record = tuple[str, int | None, bytes | None, bytes | None, list[Header] | None]


class BatchSender:
    """One batch sender per app (``app``: a started Faust app; ``batch_bytes``: the
    size a builder is closed at)."""

    def __init__(self, app: Any, batch_bytes: int) -> None:
        self.app = app
        self.batch_bytes = batch_bytes
        self._partitions: dict[str, int] = {}  # topic -> partition count

    async def send(self, records: Iterable[Record]) -> list[tuple[asyncio.Future[Any], int]]:
        """Queue every record; returns (future, records in the builder) per builder.

        The futures resolve once the broker acknowledged the builder's records
        (with the producer's acks), or raise."""
        producer = self.app.producer._ensure_producer()  # private: see the module docstring
        by_tp: dict[tuple[str, int], list[Record]] = {}
        for record in records:
            topic, partition = record[0], record[1]
            if partition is None:
                partition = await self._partition_of(producer, topic, record[2])
            by_tp.setdefault((topic, partition), []).append(record)
        sent: list[tuple[asyncio.Future[Any], int]] = []
        for (topic, partition), rs in by_tp.items():
            sent += await self._send_partition(producer, topic, partition, rs)
        return sent

    async def _send_partition(
        self, producer: Any, topic: str, partition: int, records: list[Record]
    ) -> list[tuple[asyncio.Future[Any], int]]:
        sent = []
        batch, n = self._builder(producer), 0
        for _, _, key, value, headers in records:
            if batch.append(timestamp=None, key=key, value=value, headers=headers or []) is None:
                if n == 0:
                    raise ValueError(f"a record to {topic} is larger than any batch")
                sent.append((await self._submit(producer, batch, topic, partition), n))
                batch, n = self._builder(producer), 0
                batch.append(timestamp=None, key=key, value=value, headers=headers or [])
            n += 1
        if n:
            sent.append((await self._submit(producer, batch, topic, partition), n))
        return sent

    @staticmethod
    async def _submit(
        producer: Any, batch: BatchBuilder, topic: str, partition: int
    ) -> asyncio.Future[Any]:
        # Closed: complete, so it is sent without lingering, and the producer's own
        # send() never appends to it.
        batch.close()
        return await producer.send_batch(batch, topic, partition=partition)

    def _builder(self, producer: Any) -> BatchBuilder:
        accumulator = producer._message_accumulator  # for the producer's compression
        return BatchBuilder(self.batch_bytes, accumulator._compression_type)

    async def _partition_of(self, producer: Any, topic: str, key: bytes | None) -> int:
        n = self._partitions.get(topic)
        if n is None:
            n = self._partitions[topic] = len(await producer.partitions_for(topic))
        return random.randrange(n) if key is None else partition_for(key, n)


def last_offsets(sent: list[tuple[asyncio.Future[Any], int]]) -> dict[Any, int]:
    """The highest offset written per topic-partition, from delivered builders."""
    last: dict[Any, int] = {}
    for fut, n in sent:
        meta = fut.result()
        tp, end = meta.topic_partition, meta.offset + n - 1
        if end > last.get(tp, -1):
            last[tp] = end
    return last
