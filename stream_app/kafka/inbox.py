"""Input handed to the batch loop a fetch at a time, around Faust's per-message path.

Faust gives each fetched message to its stream alone: the consumer's drain loop runs
the conductor's callback as a task raced against the flow's suspension (two tasks
and a wait per message), the conductor takes a lock and queues an event, and the
stream's iteration yields to the event loop and calls the sensors, about a fifth of
a batch worker's time. For a topic registered here the drain loop
(:mod:`stream_app.compat.direct_delivery`) appends the message to an :class:`Inbox`
instead, and the batch loop takes what a fetch brought, at once.

What Faust's path guarantees stays:

- a message is tracked as pending its ack (what a commit, a rebalance and a stop
  wait for) when the batch loop takes it, as stream iteration tracks it;
- nothing is taken while the flow is suspended (a rebalance), nor from an older
  consumer generation; the inbox is cleared when the flow resumes, as the streams'
  queues are, after the seek to the committed offsets, so what was dropped is
  fetched again;
- back-pressure: the drain loop waits while the inbox holds ``maxsize`` messages.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import faust
from faust.events import Event

_INBOXES: weakref.WeakKeyDictionary[Any, dict[str, Inbox]] = weakref.WeakKeyDictionary()


def inboxes_of(app: Any) -> dict[str, Inbox]:
    """The inboxes registered for ``app``, by topic name (none: Faust's own path)."""
    return _INBOXES.get(app, {})


class Inbox:
    """The fetched, not yet taken messages of one topic, in fetch order."""

    def __init__(self, app: faust.App, topic: str, maxsize: int) -> None:
        self.app = app
        self.topic = topic
        self.maxsize = maxsize
        self._messages: deque[Any] = deque()
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        _INBOXES.setdefault(app, {})[topic] = self
        app.flow_control.manage_queue(self)  # type: ignore[arg-type]  # needs .clear() only

    def __len__(self) -> int:
        return len(self._messages)

    # -- the drain loop's side -------------------------------------------------------
    def put(self, message: Any) -> None:
        self._messages.append(message)
        if len(self._messages) >= self.maxsize:
            self._room.clear()

    def fetched(self) -> None:
        """A fetch's messages are all in: wake the batch loop."""
        if self._messages:
            self._arrived.set()

    def full(self) -> bool:
        return not self._room.is_set()

    async def wait_room(self) -> None:
        await self._room.wait()

    def clear(self) -> None:
        """Forget every message (flow control, on resume after a rebalance)."""
        self._messages.clear()
        self._arrived.clear()
        self._room.set()

    # -- the batch loop's side -------------------------------------------------------
    async def batches(self, limit: int, linger_s: float = 0.0) -> AsyncIterator[list[Event]]:
        """Forever: the waiting messages as events, ``limit`` at most at a time
        (``linger_s``: wait this long for more when fewer are waiting)."""
        while True:
            await self._arrived.wait()
            if linger_s and len(self._messages) < limit:
                await asyncio.sleep(linger_s)
            events = self.take(limit)
            if events:
                yield events

    def take(self, limit: int) -> list[Event]:
        """Up to ``limit`` waiting messages as events, each tracked as pending its ack."""
        app = self.app
        consumer = app.consumer
        generation = app.consumer_generation_id
        active = app.flow_control.is_active()
        messages = self._messages
        out: list[Event] = []
        while messages and len(out) < limit:
            message = messages.popleft()
            if not active or message.generation_id != generation:
                continue  # fetched again after the rebalance's seek
            if not message.tracked:
                message.tracked = True
                consumer.track_message(message)
            message.incref()
            out.append(Event(app, message.key, message.value, message.headers, message))
        if len(messages) < self.maxsize:
            self._room.set()
        if not messages:
            self._arrived.clear()
        return out
