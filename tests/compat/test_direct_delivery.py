""":mod:`stream_app.compat.direct_delivery` and :class:`stream_app.kafka.inbox.Inbox`:
input reaches the batch loop a fetch at a time, with Faust's bookkeeping kept."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types.tuples import ConsumerMessage as Message

from stream_app.compat import direct_delivery
from stream_app.kafka.inbox import Inbox, inboxes_of
from tests.compat.guard_cases import CHANGELOG, INPUT, INPUT_2, consumer_of, new_app


def message(tp: Any, offset: int, generation: int = 0) -> Message:
    return Message(
        tp.topic, tp.partition, offset, 0.0, 0, [], b"k", b"v%d" % offset, None,
        tp=tp, generation_id=generation,
    )  # fmt: skip


def running_app() -> Any:
    """A new app with its flow resumed (Faust starts it suspended until an assignment)."""
    app = new_app()
    app.flow_control.resume()
    return app


class Fetcher:
    """Faust's fetcher service, as far as the drain loop looks at it."""

    def __init__(self) -> None:
        self._stopped = asyncio.Event()


def fetches_of(consumer: Any, fetches: list[list[Message]], fetcher: Fetcher) -> list[str]:
    """Make ``consumer.getmany`` return ``fetches``, one per call, then stop the
    fetcher; returns the log of what the conductor's callback was given."""
    given: list[str] = []
    left = list(fetches)

    def getmany(timeout: float) -> Any:
        async def records() -> Any:
            for m in left.pop(0) if left else []:
                yield m.tp, m
            if not left:
                fetcher._stopped.set()

        return records()

    async def callback(m: Message) -> None:
        given.append(f"{m.topic}:{m.offset}")

    consumer.getmany = getmany
    consumer.callback = callback
    return given


async def test_input_goes_to_the_inbox_in_fetch_order_and_the_rest_to_the_conductor() -> None:
    app = running_app()
    consumer = consumer_of(app)
    inbox = Inbox(app, INPUT.topic, maxsize=100)
    assert inboxes_of(app) == {INPUT.topic: inbox}
    fetcher = Fetcher()
    fetched = [message(INPUT, 0), message(CHANGELOG, 5), message(INPUT_2, 0), message(INPUT, 1)]
    given = fetches_of(consumer, [fetched], fetcher)
    await direct_delivery.patched(consumer, fetcher)
    assert given == [f"{CHANGELOG.topic}:5"]
    assert consumer._read_offset[INPUT] == 1 and consumer._read_offset[CHANGELOG] == 5
    events = inbox.take(10)
    assert [(e.message.partition, e.message.offset) for e in events] == [(0, 0), (1, 0), (0, 1)]
    assert all(e.message in consumer.unacked for e in events)  # tracked: pending its ack
    assert not len(inbox)
    for event in events:
        event.ack()
    assert not consumer.unacked
    assert sorted(consumer._acked[INPUT]) == [0, 1]


async def test_a_full_inbox_holds_the_drain_loop_until_the_batch_loop_takes() -> None:
    app = running_app()
    consumer = consumer_of(app)
    inbox = Inbox(app, INPUT.topic, maxsize=3)
    fetcher = Fetcher()
    fetches_of(consumer, [[message(INPUT, n) for n in range(4)], [message(INPUT, 4)]], fetcher)
    drain = asyncio.ensure_future(direct_delivery.patched(consumer, fetcher))
    await asyncio.sleep(0.05)
    assert len(inbox) == 4 and inbox.full() and not drain.done()  # waits for room
    assert [e.message.offset for e in inbox.take(3)] == [0, 1, 2]
    await asyncio.wait_for(drain, 1)
    assert [e.message.offset for e in inbox.take(10)] == [3, 4]


async def test_nothing_is_taken_from_an_older_generation_or_a_suspended_flow() -> None:
    app = running_app()
    inbox = Inbox(app, INPUT.topic, maxsize=100)
    app.consumer_generation_id = 2
    for m in (message(INPUT, 0, generation=1), message(INPUT, 1, generation=2)):
        inbox.put(m)
    inbox.fetched()
    assert [e.message.offset for e in inbox.take(10)] == [1]
    inbox.put(message(INPUT, 2, generation=2))
    app.flow_control.suspend()
    assert inbox.take(10) == []
    assert [m.offset for m in app.consumer.unacked] == [1]  # the others never tracked
    inbox.put(message(INPUT, 3, generation=2))
    app.flow_control.resume()  # clears the inbox, as the streams' queues
    assert not len(inbox)


async def test_batches_come_a_fetch_at_a_time_up_to_the_limit() -> None:
    app = running_app()
    inbox = Inbox(app, INPUT.topic, maxsize=100)
    for n in range(5):
        inbox.put(message(INPUT, n))
    batches = inbox.batches(limit=3)
    first = asyncio.ensure_future(batches.__anext__())
    await asyncio.sleep(0.01)
    assert not first.done()  # the fetch is not all in yet
    inbox.fetched()
    assert [e.message.offset for e in await asyncio.wait_for(first, 1)] == [0, 1, 2]
    assert [e.message.offset for e in await asyncio.wait_for(batches.__anext__(), 1)] == [3, 4]


def test_an_app_without_inboxes_runs_upstreams_loop() -> None:
    assert inboxes_of(new_app()) == {}
    assert direct_delivery.upstream.__qualname__ == "Consumer._drain_messages"
