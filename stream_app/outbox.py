"""Events in flight: publish each event's messages in input order, then ack the event.

The agent reads an event, applies it to state, and hands the outbox an awaitable
of the messages to publish (a micro-batch result, or messages ready at once). One
publisher task awaits them in the order the events were read, publishes, and only
then acks, so an offset is committed only after its output is produced
(at-least-once). ``maxsize`` bounds the events in flight: ``put`` waits when full.
An optional ``on_published`` callback per event runs once its own messages (not
a dead letter for a failed scoring) have been handed to the producer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from stream_app import monitoring
from stream_app.outgoing import Outgoing
from stream_app.processor import Source

log = logging.getLogger(__name__)

Publish = Callable[[list[Outgoing]], Awaitable[None]]
Ack = Callable[[Any], Awaitable[Any]]
OnError = Callable[[bytes | None, Source, Exception], Outgoing]
OnPublished = Callable[[], None]
_Entry = tuple[Any, Source, "asyncio.Future[list[Outgoing]]", OnPublished | None]


class Outbox:
    def __init__(self, publish: Publish, ack: Ack, on_error: OnError, maxsize: int) -> None:
        self._publish = publish
        self._ack = ack
        self._on_error = on_error
        self._queue: asyncio.Queue[_Entry]
        self._queue = asyncio.Queue(maxsize)
        self._task: asyncio.Task[None] | None = None

    async def put(
        self,
        event: Any,
        src: Source,
        pending: Awaitable[list[Outgoing]],
        on_published: OnPublished | None = None,
    ) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox")
            self._task.add_done_callback(_report_crash)
        await self._queue.put((event, src, asyncio.ensure_future(pending), on_published))
        monitoring.IN_FLIGHT.set(self._queue.qsize())

    @staticmethod
    def ready(messages: list[Outgoing]) -> asyncio.Future[list[Outgoing]]:
        fut: asyncio.Future[list[Outgoing]] = asyncio.get_running_loop().create_future()
        fut.set_result(messages)
        return fut

    async def _run(self) -> None:
        while True:
            event, src, pending, on_published = await self._queue.get()
            try:
                messages = await pending
            except Exception as exc:
                # A scoring failure must not cost the event: it goes to the DLQ.
                log.exception("scoring failed at %s:%d:%d", *src.coordinates)
                messages = [self._on_error(event.value, src, exc)]
                on_published = None
            await self._publish(messages)
            if on_published is not None:
                on_published()
            await self._ack(event)
            self._queue.task_done()
            monitoring.IN_FLIGHT.set(self._queue.qsize())

    async def drain(self, timeout: float) -> None:
        """Publish what is in flight (up to ``timeout`` seconds), then stop the publisher."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            log.warning("outbox: %d events still in flight at stop", self._queue.qsize())
        self._task.cancel()


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.critical(
            "outbox publisher died; events in flight stay unacked", exc_info=task.exception()
        )
