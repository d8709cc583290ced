"""Guard :mod:`stream_app.compat.fetch_guard`: one case per way a fetch lost input."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from stream_app.compat import fetch_guard, pause_forgets_buffer, seek_uncommitted
from tests.compat.guard_cases import (
    CHANGELOG,
    INPUT,
    Record,
    both_versions,
    consumer_of,
    invariant,
    new_app,
    records,
)


class ConsumerThread:
    """aiokafka's fetcher behind Faust's consumer thread, for a few partitions."""

    def __init__(self, backlog: dict[Any, list[Record]], position: dict[Any, int]) -> None:
        self.backlog = backlog
        self.position = position
        self.while_fetching: Callable[[], Awaitable[None]] | None = None

    async def getmany(self, partitions: set[Any] | None, timeout: float) -> dict[Any, Any]:
        start = dict(self.position)  # the fetch request is sent from these positions
        if self.while_fetching is not None:  # it returns within `timeout`
            await self.while_fetching()
        fetched = {}
        for tp, recs in self.backlog.items():
            if partitions and tp not in partitions:  # aiokafka/consumer/fetcher.py:1221
                continue
            if new := [r for r in recs if r.offset >= start[tp]]:
                fetched[tp] = new
                self.position[tp] = new[-1].offset + 1
        return fetched

    def seek(self, tp: Any, offset: int) -> None:
        self.position[tp] = offset


@pytest.mark.parametrize("case", ["changelogs-paused", "seek-landed", "flow-stopped", "paused"])
@both_versions(fetch_guard)
async def test_no_input_is_fetched_past_unless_it_is_delivered(
    impl: Callable[..., Any], upstream: bool, case: str
) -> None:
    consumer = consumer_of(new_app())
    committed = 3  # input records 3-9 are not processed yet
    thread = ConsumerThread(
        {INPUT: records(3, 9), CHANGELOG: records(0, 4)}, {INPUT: committed, CHANGELOG: 0}
    )
    consumer._thread = thread

    async def perform_seek() -> None:  # the seek to the committed offsets
        consumer.__dict__[seek_uncommitted.SEEKS] = seek_uncommitted.seeks(consumer) + 1
        thread.seek(INPUT, committed)

    consumer.perform_seek = perform_seek
    if case == "changelogs-paused":
        # Table recovery: only the changelog is active; it is done reading and pauses
        # the changelog while the fetch is in flight, emptying the active set.
        consumer._set_active_tps({CHANGELOG})
        pause_forgets_buffer.upstream(consumer, {INPUT})

        async def during() -> None:
            pause_forgets_buffer.upstream(consumer, {CHANGELOG})

    elif case == "seek-landed":
        # Records 3-5 were fetched before a rebalance cleared them from the queue; the
        # fetch in flight reads on from 6 while the seek back to 3 lands.
        thread.position[INPUT] = 6
        consumer._set_active_tps({INPUT})

        async def during() -> None:  # a rebalance ends and seeks while the fetch runs
            await perform_seek()

    elif case == "flow-stopped":
        consumer._set_active_tps({INPUT, CHANGELOG})

        async def during() -> None:  # a rebalance starts: the flow is suspended
            consumer.stop_flow()

    else:
        consumer._set_active_tps({INPUT})

        async def during() -> None:  # a rebalance pauses the input for recovery
            pause_forgets_buffer.upstream(consumer, {INPUT})

    thread.while_fetching = during
    fetched = await impl(consumer, consumer._get_active_partitions(), 1.0)
    with invariant(upstream):
        # Faust would skip input records of a paused partition or a stopped flow, or
        # deliver a batch that predates the seek: whatever input is not handed over
        # must be fetched again, from the first record not processed.
        assert INPUT not in fetched
        assert thread.position[INPUT] == committed
