"""A fetched input message goes to its topic's inbox without a task per message.

Invariant: every message the drain loop accepts (the read-offset and gap
bookkeeping as upstream) reaches exactly one consumer: the conductor's callback, or,
for a topic with an :class:`~stream_app.kafka.inbox.Inbox`, that inbox (in fetch
order). The drain loop waits for room in a full inbox, or until the flow is
suspended, once per fetch.
Upstream: ``Consumer._drain_messages`` (faust/transport/consumer.py:1170-1250) awaits
``wait_first(callback(message), suspend_flow.wait())`` for each message: two tasks
and an ``asyncio.wait`` per message, then the conductor's lock, flow-control awaits
and queue (faust/transport/conductor.py:107-160, :303-307). This is that loop with
the inbox branch; an app without inboxes runs upstream's loop unchanged.
Issue: none upstream (a cost, not a fault); :mod:`stream_app.kafka.inbox` says what
the batch loop keeps of the stream's guarantees.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, cast

from faust.transport.consumer import CONSUMER_FETCHING, Consumer

from stream_app.kafka.inbox import Inbox, inboxes_of

OWNER: Final = Consumer
NAME: Final = "_drain_messages"
upstream: Final = Consumer._drain_messages
YIELD_EVERY = 100  # messages between turns given to the event loop, as upstream


async def drain_messages(self: Consumer, fetcher: Any) -> None:
    inboxes = inboxes_of(self.app)
    if not inboxes:
        return await upstream(self, fetcher)
    consumer_should_stop = cast(Any, self)._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            self.diag.set_flag(CONSUMER_FETCHING)
            records = self.getmany(timeout=1.0)
            await self.sleep(0)  # as upstream: getmany can return at once, in a loop
            if not self.should_stop:
                await _deliver(self, records, inboxes)
            self.diag.unset_flag(CONSUMER_FETCHING)
            for inbox in inboxes.values():
                inbox.fetched()
                if inbox.full():
                    await self.wait_first(inbox.wait_room(), self.suspend_flow.wait())
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        self.diag.unset_flag(CONSUMER_FETCHING)


async def _deliver(self: Consumer, records: Any, inboxes: dict[str, Inbox]) -> None:
    """One fetch's messages: to an inbox, or through the conductor (upstream's
    per-message body, its bookkeeping unchanged)."""
    callback = self.callback
    read_offset = self._read_offset
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    since_yield = 0
    async for tp, message in records:
        since_yield += 1
        if since_yield > YIELD_EVERY:
            await asyncio.sleep(0)
            since_yield = 0
        offset = message.offset
        r_offset = read_offset[tp]
        if r_offset is not None and offset < r_offset:
            continue  # upstream drops it too (logged at its "dev" level)
        if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
            await self._add_gap(tp, r_offset + 1, offset)
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()
        inbox = inboxes.get(message.topic)
        if inbox is None:
            await self.wait_first(callback(message), self.suspend_flow.wait())
        else:
            inbox.put(message)
        read_offset[tp] = offset


patched: Final = drain_messages
