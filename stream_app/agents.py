"""The worker's Faust agents, each a small loop over one topic.

``recommend`` reads the input topic: each event goes through the pipeline
(:class:`~stream_app.processor.Processor`) and what comes out is published, a
batch at a time (:mod:`stream_app.batch_loop`) unless ``STREAMREC_STREAM_BATCH_MAX``
is 1 (then one event at a time, or with a served model, through the outbox).
``erasure`` forwards erasure requests from the control topic to the input.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import faust

from stream_app import monitoring
from stream_app.batch_loop import BatchLoop, Handled
from stream_app.control import CONTROL_HEADER, forget_headers
from stream_app.erasure import ForgetRequest, InvalidRequest
from stream_app.kafka.inbox import Inbox
from stream_app.outbox import Outbox
from stream_app.outgoing import Outgoing
from stream_app.processor import Processor, ScoreRequest, Source
from stream_app.routing import partition_for
from stream_app.served_model import ModelServer
from stream_app.settings import Settings
from stream_app.state.write_back import WriteBack, event_context
from stream_app.topology import Topology

log = logging.getLogger(__name__)


Ingested = tuple[Source, ScoreRequest | list[Outgoing]]


def _is_control(event: Any) -> bool:
    """A control marker (erasure, sweep): it acts on what came before it."""
    return any(k == CONTROL_HEADER for k, _ in event.message.headers or ())


def _chunks(events: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``events`` in order, at most ``size`` at a time, each control marker alone."""
    start = 0
    for i, event in enumerate(events):
        if _is_control(event):
            if start < i:
                yield from (events[j : min(j + size, i)] for j in range(start, i, size))
            yield events[i : i + 1]
            start = i + 1
    yield from (events[j : min(j + size, len(events))] for j in range(start, len(events), size))


class Agents:
    """``server``: the micro-batcher of a served model; None for the online Markov model."""

    def __init__(
        self,
        settings: Settings,
        topology: Topology,
        processor: Processor,
        server: ModelServer | None,
        write_back: tuple[Sequence[WriteBack], Sequence[WriteBack]] = ((), ()),
    ) -> None:
        self.settings = settings
        self.topology = topology
        self.processor = processor
        self.server = server
        self.write_back = write_back  # the batch loop's tables: (delivered first, the rest)
        self.inbox: Inbox | None = None  # the batch loop's input (set by register)

    def register(self, app: faust.App) -> None:
        events = self.topology.events
        if self.settings.stream_batch_max > 1:
            # The batch loop takes the topic's input from here, not from the agent's
            # stream (which stays subscribed, for the assignment and the tables).
            size = max(app.conf.stream_buffer_maxsize, 2 * self.settings.stream_batch_max)
            self.inbox = Inbox(app, events.get_topic_name(), size)
        app.agent(events, name="recommend")(self.recommend)
        app.agent(self.topology.control, name="erasure")(self.forward_erasures)

    async def publish(self, messages: list[Outgoing]) -> None:
        topics = self.topology.topics
        for m in messages:
            await topics[m.topic].send(key=m.key, value=m.value, headers=m.headers)

    def ingest(self, event: Any, defer: bool = False) -> Ingested:
        """Validate and apply to state: must run while ``event`` is the current event
        (``defer``: see :meth:`Processor.ingest`)."""
        msg = event.message
        src = Source(msg.topic, msg.partition, msg.offset, msg.key, msg.headers or ())
        try:
            return src, self.processor.ingest(event.value, src, defer)
        except Exception as exc:
            # A bug must not cost the event: it goes to the DLQ, the stream goes on.
            log.exception("processing failed at %s:%d:%d", *src.coordinates)
            return src, [self.processor.failed(event.value, src, exc)]

    def handle(self, event: Any) -> Handled:
        """One event through ingest and scoring, as the current event: the messages to
        publish, and the event's ts when it got its recommendation."""
        src, result = self.ingest(event)
        if isinstance(result, list):
            return result, None
        try:
            return self.processor.recommend([result]), result.event_ts
        except Exception as exc:
            log.exception("scoring failed at %s:%d:%d", *src.coordinates)
            return [self.processor.failed(event.value, src, exc)], None

    async def handle_inline(self, events: Sequence[Any]) -> list[Handled]:
        """A batch through :meth:`handle`, one event after another (the Markov model)."""
        out = []
        for event in events:
            with event_context(event):
                out.append(self.handle(event))
        return out

    async def handle_served(self, server: ModelServer, events: Sequence[Any]) -> list[Handled]:
        """A batch with a served model: the events ingested in order, a chunk of the
        micro-batcher's size at a time, each chunk's requests submitted to it as soon as
        they are ingested (the model scores one chunk while the loop ingests the next),
        then each answer adjusted and rendered in input order (as the outbox path
        does, one event at a time). The adjuster reads no table state: it observes a
        chunk's events, and takes each list's early part, while the model scores. A
        control marker
        (erasure, sweep) waits until every event before it is rendered: a list
        published after an erasure would bring the erased user's data back."""
        out: list[Handled] = []
        scoring: list[tuple[Sequence[Any], list[Ingested], asyncio.Future[list[Any]]]] = []

        async def render_scored() -> None:
            # Every observation before these renders is made: take their early part
            # while the model may still be scoring.
            requests = [r for _, got, _ in scoring for _, r in got if isinstance(r, ScoreRequest)]
            self.processor.prepare(requests)
            for chunk, got, answers in scoring:
                out.extend(self.render_served(chunk, got, await answers))
            scoring.clear()

        for chunk in _chunks(events, self.settings.batch_max_size):
            if _is_control(chunk[0]):  # a marker: its own chunk, after all before it
                await render_scored()
                with event_context(chunk[0]):
                    out.append(self.handle(chunk[0]))
                continue
            got = []
            for event in chunk:
                with event_context(event):
                    got.append(self.ingest(event, defer=True))
            requests = [r for _, r in got if isinstance(r, ScoreRequest)]
            scoring.append((chunk, got, asyncio.ensure_future(server.score_all(requests))))
            await server.dispatched()  # the model scores the chunk while the loop goes on:
            for event, (_, result) in zip(chunk, got, strict=True):
                if isinstance(result, ScoreRequest):
                    with event_context(event):
                        self.processor.observe(result)  # the adjuster learns from it
        await render_scored()
        return out

    def render_served(
        self,
        events: Sequence[Any],
        ingested: list[Ingested],
        answers: list[Any],
    ) -> list[Handled]:
        """Each event's messages: its answer adjusted and rendered, or what ingest gave."""
        out: list[Handled] = []
        left = iter(answers)
        for event, (src, result) in zip(events, ingested, strict=True):
            if isinstance(result, list):
                out.append((result, None))
                continue
            answer = next(left)
            with event_context(event):
                try:
                    if isinstance(answer, BaseException):
                        raise answer
                    out.append((self.processor.render([result], [answer]), result.event_ts))
                except Exception as exc:
                    log.exception("scoring failed at %s:%d:%d", *src.coordinates)
                    out.append(([self.processor.failed(event.value, src, exc)], None))
        return out

    async def recommend(self, stream: faust.StreamT) -> None:
        if self.settings.stream_batch_max > 1:
            counts, rest = self.write_back
            steps = (
                self.handle_inline
                if self.server is None
                else partial(self.handle_served, self.server)
            )
            # By default only a served model's batches overlap delivery: a Markov batch
            # never pauses, so its successor would only hold back its delivery
            # (measured: p50 30 -> 38-51 ms at 2,000 events/s).
            mode = self.settings.stream_overlap
            overlap = mode == "on" or (mode == "auto" and self.server is not None)
            loop = BatchLoop(self.settings, self.topology, steps, counts, rest, overlap=overlap)
            assert self.inbox is not None, "register() makes the inbox"
            await loop.run(self.inbox)
        elif self.server is None:
            await self.recommend_inline(stream)
        else:
            await self.recommend_batched(stream, self.server)

    async def recommend_inline(self, stream: faust.StreamT) -> None:
        """Markov: score at once (it reads the tables, so it stays on the loop)."""
        async for event in stream.events():
            consumed_at = time.monotonic()
            out, event_ts = self.handle(event)
            await self.publish(out)
            if event_ts is not None:
                monitoring.observe_published(consumed_at, event_ts)

    async def recommend_batched(self, stream: faust.StreamT, server: ModelServer) -> None:
        """Model: many events in flight, so the micro-batcher can fill its batches.

        State is updated here, in input order; scoring is awaited by the outbox,
        which publishes in input order and only then acks (offsets commit after
        output). Faust waits for those acks before a rebalance or a stop commits.
        """
        s = self.settings
        manual = stream.noack()  # type: ignore[attr-defined]  # Stream has it, StreamT not
        outbox = Outbox(self.publish, manual.ack, self.processor.failed, s.batch_queue_size)
        try:
            async for event in manual.events():
                consumed_at = time.monotonic()
                src, result = self.ingest(event)
                if isinstance(result, list):
                    await outbox.put(event, src, Outbox.ready(result))
                else:
                    published = partial(monitoring.observe_published, consumed_at, result.event_ts)
                    await outbox.put(event, src, server.recommend(result), published)
        finally:
            await outbox.drain(timeout=s.session_timeout_s)

    async def forward_erasures(self, stream: faust.StreamT) -> None:
        """Erasure requests go to the user's input partition, to run in order with
        the user's events (state can only be written there; see Processor.forget)."""
        async for event in stream.events():
            msg = event.message
            try:
                key = ForgetRequest.decode(event.value).user_id.encode()
            except InvalidRequest as exc:
                src = Source(msg.topic, msg.partition, msg.offset, msg.key)
                await self.publish([self.processor.invalid_control(event.value, src, exc)])
                continue
            partition = partition_for(key, self.settings.partitions)
            await self.topology.events.send(
                key=key, value=event.value, partition=partition, headers=forget_headers()
            )
