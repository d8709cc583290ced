"""Replay a dataset into the input topic at a steady rate."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from models.datasets import (
    StreamEvent,
    UserSequence,
    guess_format,
    read_events,
    sequence_events,
    synthetic_sequences,
    user_sequences,
)
from stream_app.erasure import ForgetRequest
from stream_app.events import event_value
from stream_app.kafka import clients
from stream_app.serializers import Format, encode_value
from stream_app.settings import Settings

log = logging.getLogger(__name__)

Partitioner = Callable[[bytes, int], int]  # (key, partition count) -> partition


class Pacer:
    """Holds a loop to ``rate`` iterations per second; ``rate`` <= 0 means no limit.

    It sleeps only once it is ``grain`` seconds ahead, so iterations come in bursts
    of about ``rate * grain``: each wake-up of a sleeping process costs CPU of its
    own, which a load generator sharing the cores with what it measures takes from it.
    """

    def __init__(self, rate: float, grain: float = 0.002) -> None:
        self.rate = rate
        self.grain = grain
        self.count = 0
        self.start = time.monotonic()

    async def tick(self) -> None:
        if self.rate > 0:
            ahead = self.count / self.rate - (time.monotonic() - self.start)
            if ahead > self.grain:
                await asyncio.sleep(ahead)
        self.count += 1


async def send_event(
    producer: AIOKafkaProducer,
    topic: str,
    user: str,
    item: str,
    event_type: str,
    event_id: str,
    ts: int | None = None,
    fmt: Format = "msgpack",
    category: str | None = None,
    partition: int | None = None,
) -> asyncio.Future[Any]:
    """Send one event keyed by its user (``ts`` defaults to the wall clock, in ms), on
    ``partition`` or where the client's partitioner puts the key; returns the delivery
    future."""
    when = int(time.time() * 1000) if ts is None else ts
    value = event_value(user, item, event_type, when, event_id, category)
    key = user.encode()
    return await producer.send(topic, encode_value(value, fmt), key=key, partition=partition)


class InFlight:
    """Delivery futures of sends not yet awaited: awaited each time ``bound`` pile up,
    and the rest by :meth:`drain`, so memory stays bounded and a failed send raises."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._pending: list[asyncio.Future[Any]] = []

    async def add(self, delivery: asyncio.Future[Any]) -> None:
        self._pending.append(delivery)
        if len(self._pending) >= self.bound:
            await self.drain()

    async def drain(self) -> None:
        await asyncio.gather(*self._pending)
        self._pending.clear()


def dataset_events(
    path: Path | None, seed: int = 0, fmt: str | None = None
) -> Iterator[StreamEvent]:
    """(user, item, event_type, original ts or None, category or None) from a log in
    one of ``replay-eval``'s formats (guessed from the path unless ``fmt``), in time
    order; from a sequences file or a generated stream, users interleaved by ``seed``."""
    if path is None:
        generated = (UserSequence(u, items) for u, items in synthetic_sequences(seed=seed))
        yield from sequence_events(generated, seed)
    elif (fmt or guess_format(path)) == "sequences":
        yield from sequence_events(user_sequences(path), seed)
    else:
        yield from read_events(path, fmt)


async def produce(
    settings: Settings,
    dataset: Path | None,
    rate: float,
    limit: int | None,
    fmt: Format = "msgpack",
    seed: int = 0,
    log_format: str | None = None,
    partitioner: Partitioner | None = None,
) -> int:
    """Send events, keyed by user; return how many were sent.

    ``partitioner(key, partitions)`` places each event; by default the client's
    (murmur2, like the Java client's).

    Timestamps are the wall clock at sending, strictly increasing; Taobao's
    original gaps are not reproduced, its order is. ``rate`` <= 0 sends as fast
    as the producer can.
    """
    run = uuid.uuid4().hex[:8]
    producer = clients.producer(settings)
    await producer.start()
    sent = 0
    last_ts = 0
    start = time.monotonic()
    pacer = Pacer(rate)
    in_flight = InFlight(1000)
    try:
        events = dataset_events(dataset, seed, log_format)
        for user, item, event_type, _, category in itertools.islice(events, limit):
            await pacer.tick()
            last_ts = max(last_ts + 1, int(time.time() * 1000))
            await in_flight.add(
                await send_event(
                    producer,
                    settings.input_topic,
                    user,
                    item,
                    event_type,
                    f"{run}-{sent}",
                    last_ts,
                    fmt,
                    category,
                    partitioner(user.encode(), settings.partitions) if partitioner else None,
                )
            )
            sent += 1
        await in_flight.drain()
    finally:
        await producer.stop()
    log.info("sent %d events in %.1fs", sent, time.monotonic() - start)
    return sent


async def request_erasure(settings: Settings, request: ForgetRequest) -> None:
    """Publish an erasure request to the control topic, keyed by the user."""
    producer = clients.producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.control_topic, request.encode(), key=request.user_id.encode()
        )
    finally:
        await producer.stop()
