"""Plain aiokafka clients for tests: what an outside user of streamrec runs.

``security``: aiokafka's security options (``stream_app.kafka.security.client_security``)
for a secured broker; none for the plain one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from stream_app.serializers import decode_value


async def send_all(
    bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]], **security: Any
) -> None:
    """Send (key, value) pairs in order and wait for every acknowledgement."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=4 * 1024 * 1024, **security
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_n(
    bootstrap: str,
    topic: str,
    n: int,
    timeout: float = 60.0,
    settle: float = 0.0,
    **security: Any,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``n`` records from the start of ``topic``; then ``settle`` s more to catch extras."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        **security,
    )
    await consumer.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(records)
        end = time.monotonic() + settle
        while time.monotonic() < end:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


def decoded(records: list[ConsumerRecord[bytes, bytes]]) -> list[dict[str, Any]]:
    return [decode_value(r.value) for r in records]


async def read_all(
    bootstrap: str, topic: str, partitions: int, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record ``topic`` holds now, from its start to its end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic} not read to its end within {timeout}s")
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()
