"""Guard :mod:`stream_app.compat.seek_uncommitted`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stream_app.compat import seek_uncommitted
from tests.compat.guard_cases import (
    CHANGELOG,
    INPUT,
    INPUT_2,
    both_versions,
    consumer_of,
    invariant,
    new_app,
)


@both_versions(seek_uncommitted)
async def test_a_seek_lands_on_the_committed_offset_or_the_start(
    impl: Callable[..., Any], upstream: bool
) -> None:
    consumer = consumer_of(new_app())
    committed: dict[Any, int | None] = {INPUT: 7, INPUT_2: None, CHANGELOG: None}
    # Where aiokafka's fetcher stands: INPUT_2 had six records fetched that the
    # rebalance then dropped undelivered; no commit for it yet.
    position = {INPUT: 12, INPUT_2: 6, CHANGELOG: 4}

    async def seek_to_committed() -> dict[Any, int | None]:
        for tp, offset in committed.items():  # aiokafka/consumer/consumer.py:897-903
            if offset and offset > 0:
                position[tp] = offset
        return dict(committed)

    async def _seek(tp: Any, offset: int) -> None:
        position[tp] = offset

    consumer.seek_to_committed = seek_to_committed
    consumer._seek = _seek
    consumer.assignment = lambda: set(position)
    await impl(consumer)
    assert position[INPUT] == 7
    assert position[CHANGELOG] == 4  # changelogs are left to table recovery
    with invariant(upstream):
        assert position[INPUT_2] == 0  # not 6: records 0-5 would never be processed
