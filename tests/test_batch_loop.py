"""The batch loop's order of sends and acks, without a broker (:mod:`stream_app.batch_loop`)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from stream_app import batch_loop
from stream_app.batch_loop import BatchLoop
from stream_app.outgoing import Outgoing
from stream_app.settings import Settings

Log = list[tuple[str, Any]]


class Event:
    def __init__(self, offset: int, log: Log, generation: int = 1) -> None:
        self.message = SimpleNamespace(
            topic="in", partition=offset % 2, offset=offset, key=b"k", generation_id=generation
        )
        self.value = f"v{offset}".encode()
        self.log = log

    def ack(self) -> bool:
        self.log.append(("ack", self.message.offset))
        return True


class Sender:
    """Delivers (or fails) each record a moment later, and logs it."""

    def __init__(self, log: Log, fail: bool = False) -> None:
        self.log = log
        self.fail = fail

    async def send(self, records: Any) -> list[tuple[asyncio.Future[Any], int]]:
        loop = asyncio.get_running_loop()
        out: list[tuple[asyncio.Future[Any], int]] = []
        for _, _, _, value, _ in records:
            fut: asyncio.Future[Any] = loop.create_future()

            def done(fut: asyncio.Future[Any] = fut, value: Any = value) -> None:
                self.log.append(("delivered", value))
                if self.fail:
                    fut.set_exception(RuntimeError("broker said no"))
                else:
                    fut.set_result(SimpleNamespace(topic_partition=("out", 0), offset=0))

            loop.call_later(0.01, done)
            out.append((fut, 1))
        return out


def loop_with(log: Log, fail: bool = False, overlap: bool = True) -> BatchLoop:
    app = SimpleNamespace(consumer_generation_id=1)
    topology: Any = SimpleNamespace(app=app)

    async def handle(events: Any) -> list[tuple[list[Outgoing], int | None]]:
        out: list[tuple[list[Outgoing], int | None]] = []
        for event in events:
            log.append(("processed", event.message.offset))
            out.append(([Outgoing("out", b"k", event.value)], None))  # no recommendation timed
        return out

    return BatchLoop(Settings(), topology, handle, (), (), Sender(log, fail), overlap)


def test_acks_in_order_after_every_delivery() -> None:
    log: Log = []
    events = [Event(n, log) for n in range(5)]
    events.insert(2, Event(99, log, generation=0))  # fetched before a rebalance
    asyncio.run(loop_with(log).handle(events))
    assert [x for x in log if x[0] == "processed"] == [("processed", n) for n in range(5)]
    acks = [i for i, x in enumerate(log) if x[0] == "ack" and x[1] != 99]
    delivered = [i for i, x in enumerate(log) if x[0] == "delivered"]
    assert len(delivered) == 5 and max(delivered) < min(acks)
    assert [log[i][1] for i in acks] == list(range(5))
    assert ("ack", 99) in log and ("processed", 99) not in log  # skipped, as Faust does


class Inbox:
    def __init__(self, batches: list[list[Event]]) -> None:
        self.ready = batches

    async def batches(self, limit: int, linger_s: float) -> Any:
        for b in self.ready:
            yield b


def test_a_failed_delivery_acks_nothing_and_stops_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: Log = []

    class Exited(Exception):
        pass

    def exit_(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(batch_loop.os, "_exit", exit_)
    inbox: Any = Inbox([[Event(n, log) for n in range(3)]])
    with pytest.raises(Exited) as exited:
        asyncio.run(loop_with(log, fail=True).run(inbox))
    assert exited.value.args == (batch_loop.EXIT_BATCH_FAILED,)
    assert not [x for x in log if x[0] == "ack"]


def test_the_next_batch_is_processed_while_one_is_delivered() -> None:
    """Batch 2 is processed before batch 1 is acked, but nothing of batch 2 is sent
    until batch 1 is delivered and acked: the broker sees the sequential order."""
    log: Log = []
    first, second = [Event(n, log) for n in range(3)], [Event(n, log) for n in range(3, 6)]
    inbox: Any = Inbox([first, second])
    asyncio.run(loop_with(log).run(inbox))
    kinds = [(kind, n if kind != "delivered" else n.decode()) for kind, n in log]
    assert kinds.index(("processed", 3)) < kinds.index(("ack", 0))  # overlapped
    assert max(kinds.index(("ack", n)) for n in range(3)) < kinds.index(("delivered", "v3"))
    assert [n for kind, n in kinds if kind == "ack"] == list(range(6))  # all, in order


def test_without_overlap_a_batch_waits_for_the_one_before() -> None:
    log: Log = []
    first, second = [Event(n, log) for n in range(3)], [Event(n, log) for n in range(3, 6)]
    inbox: Any = Inbox([first, second])
    asyncio.run(loop_with(log, overlap=False).run(inbox))
    kinds = [(kind, n if kind != "delivered" else n.decode()) for kind, n in log]
    assert max(kinds.index(("ack", n)) for n in range(3)) < kinds.index(("processed", 3))
    assert [n for kind, n in kinds if kind == "ack"] == list(range(6))
