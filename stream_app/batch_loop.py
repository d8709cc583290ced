"""The worker's batch loop: state, outputs and acks once per batch of input.

The input topic's :class:`~stream_app.kafka.inbox.Inbox` hands the loop what the
consumer fetched, up to ``STREAMREC_STREAM_BATCH_MAX`` events at a time, each
tracked as pending until the loop acks it. The agent's batch
handler takes each event, in arrival order and as Faust's current event, through
ingest and scoring: with the Markov model the same
:meth:`~stream_app.agents.Agents.handle` as the one-at-a-time path, so it reads
the same state and yields the same recommendation; with a served model every
request of the batch goes to the micro-batcher at once
(:meth:`~stream_app.agents.Agents.handle_served`). Table writes are held by
:class:`~stream_app.state.write_back.WriteBack` (one changelog record per changed
key) and outputs are queued without waiting. Records go out as one Kafka record
batch per topic-partition (:class:`~stream_app.kafka.batches.BatchSender`).
Then, in order:

1. the Markov counts' changelog records are delivered, then written locally;
2. the users' and the feedback lists' changelog records and the outputs are
   delivered, then the tables written locally;
3. every event of the batch is acked, in input order.

With ``overlap`` (a served model) these steps run in the background while the
next batch is processed (its reads see the batch's writes, held until written
locally); the next batch's own steps start only once they are done, so records
reach the broker in the order the one-batch-at-a-time loop sent them.

A user's state, holding the last input offset applied, is thus delivered only
after the counts its events made: a replay skips an event the user already
holds, and the counts skip what their rows already hold (they keep an offset
too). A batch that fails after its sends began acks nothing and the process
exits: Faust never delivers an unacked event to the same process again, so the
next owner of its partitions processes the batch again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NoReturn, Protocol

from models import compiled
from stream_app import monitoring
from stream_app.kafka.batches import BatchSender, Record, last_offsets
from stream_app.kafka.inbox import Inbox
from stream_app.outgoing import Outgoing
from stream_app.settings import Settings
from stream_app.state.write_back import WriteBack
from stream_app.topology import Topology

log = logging.getLogger(__name__)

EXIT_BATCH_FAILED = 75  # the process exits with this when a batch's delivery failed

# Per event: its messages, and its ts when it was recommended (else None).
Handled = tuple[list[Outgoing], int | None]
# A batch's events through ingest and scoring, each as Faust's current event, in order.
HandleBatch = Callable[[Sequence[Any]], Awaitable[list[Handled]]]


class Sender(Protocol):
    """Sends records; (delivery future, records it covers) per request unit."""

    async def send(self, records: Iterable[Record]) -> list[tuple[asyncio.Future[Any], int]]: ...


class Processed:
    """What processing a batch produced, before anything was sent."""

    __slots__ = ("outputs", "partitions", "published")

    def __init__(self) -> None:
        self.outputs: list[Outgoing] = []
        self.published: list[tuple[float, int]] = []  # (consumed_at, event_ts) per recommendation
        self.partitions: dict[int, Any] = {}  # one event per input partition, for its store


class BatchLoop:
    """``counts``: the tables delivered first (the Markov counts); ``rest``: the others.
    ``overlap``: process the next batch while one is delivered (worth it when
    processing waits for something, a served model: a batch processed without a
    pause would only delay the delivery before it)."""

    def __init__(
        self,
        settings: Settings,
        topology: Topology,
        handle: HandleBatch,
        counts: Sequence[WriteBack],
        rest: Sequence[WriteBack],
        sender: Sender | None = None,
        overlap: bool = True,
    ) -> None:
        self.settings = settings
        self.topology = topology
        self.handle_batch = handle
        self.counts = counts
        self.rest = rest
        self.sender = sender or BatchSender(topology.app, settings.producer_batch_bytes)
        self._in_flight: asyncio.Future[None] | None = None  # a batch being delivered
        self.overlap = overlap

    async def run(self, inbox: Inbox) -> None:
        s = self.settings
        log.info(
            "input in batches of up to %d events; hot path %s",
            s.stream_batch_max,
            compiled.describe(),
        )
        try:
            async for events in inbox.batches(s.stream_batch_max, s.stream_batch_wait_ms / 1000):
                try:
                    await self.start(events)
                except Exception:
                    self.fail(len(events))
        finally:
            await self.drain()  # the batch sent last is delivered and acked before the loop ends

    async def handle(self, events: Sequence[Any]) -> None:
        """One batch through, delivered and acked before this returns."""
        await self.start(events)
        await self.drain()

    async def start(self, events: Sequence[Any]) -> None:
        """Process a batch now, then deliver and ack it in the background, once the
        batch before it is delivered and acked: the next batch is processed while
        this one's records are on their way (its reads see this one's writes)."""
        app = self.topology.app
        live = []
        for event in events:
            # Fetched before a rebalance: Faust's own iteration skips and acks these.
            if event.message.generation_id != app.consumer_generation_id:
                event.ack()
            else:
                live.append(event)
        if not live:
            return
        stores = (*self.counts, *self.rest)
        for store in stores:
            store.begin()
        try:
            done = await self.process(live)
        except BaseException:
            for store in stores:
                store.abort()
            raise
        await self.drain()  # the batch before: delivered, written locally, acked
        for store in stores:
            store.seal()
        self._in_flight = asyncio.ensure_future(self.finish(live, done))
        if not self.overlap:
            await self.drain()

    async def drain(self) -> None:
        """Wait until the batch in flight, if any, is delivered and acked."""
        if self._in_flight is not None:
            task, self._in_flight = self._in_flight, None
            await task

    async def finish(self, events: Sequence[Any], done: Processed) -> None:
        try:
            await self.deliver(self.counts, [], done)
            await self.deliver(self.rest, done.outputs, done)
        except Exception:
            self.fail(len(events))
        for event in events:
            event.ack()
        monitoring.observe_published_many(done.published)

    def fail(self, size: int) -> NoReturn:
        log.critical(
            "a batch of %d events failed; none acked, stopping the worker", size, exc_info=True
        )
        for handler in logging.getLogger().handlers:
            handler.flush()  # os._exit skips it
        os._exit(EXIT_BATCH_FAILED)

    async def process(self, events: Sequence[Any]) -> Processed:
        """Each event through ingest and scoring, in order (``handle_batch``)."""
        done = Processed()
        consumed_at = time.monotonic()
        for event in events:
            done.partitions.setdefault(event.message.partition, event)
        for out, event_ts in await self.handle_batch(events):
            done.outputs += out
            if event_ts is not None:
                done.published.append((consumed_at, event_ts))
        return done

    async def deliver(
        self, stores: Sequence[WriteBack], outputs: list[Outgoing], done: Processed
    ) -> None:
        """Send the stores' changelog records and ``outputs``, wait until every one is
        delivered (a failed send raises), then write the stores locally."""
        records = [r for store in stores for r in store.records()]
        records += [(m.topic, None, m.key, m.value, m.headers) for m in outputs]
        sent = await self.sender.send(records) if records else []
        if sent:
            await asyncio.gather(*(fut for fut, _ in sent))
        last = last_offsets(sent)
        for store in stores:
            store.apply(done.partitions, last)
