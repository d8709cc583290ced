"""Guard :mod:`stream_app.compat.revoke_commit_first`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stream_app.compat import revoke_commit_first
from tests.compat.guard_cases import INPUT, INPUT_2, both_versions, consumer_of, invariant, new_app


@both_versions(revoke_commit_first)
async def test_the_revoke_handler_commits_the_revoked_partitions_work(
    impl: Callable[..., Any], upstream: bool
) -> None:
    consumer = consumer_of(new_app())
    consumer._set_active_tps({INPUT, INPUT_2})
    for tp in (INPUT, INPUT_2):  # events 0-4 of each partition processed and acked
        consumer._acked[tp] = [0, 1, 2, 3, 4]
        consumer._acked_index[tp] = {0, 1, 2, 3, 4}
        consumer._read_offset[tp] = 4
    to_commit: dict[Any, int] = {}

    async def on_revoked(revoked: set[Any]) -> None:
        # The app's handler: wait for the streams, then commit what they acked.
        to_commit.update(consumer._filter_committable_offsets(consumer.assignment() | revoked))

    consumer._on_partitions_revoked = on_revoked
    consumer.assignment = lambda: {INPUT_2}
    await impl(consumer, {INPUT})
    assert to_commit.get(INPUT_2) == 5  # a partition kept is committed either way
    with invariant(upstream):
        assert to_commit.get(INPUT) == 5  # otherwise the next owner processes 0-4 again
    assert not consumer._acked.get(INPUT) and consumer._read_offset.get(INPUT) is None
    assert INPUT not in consumer._get_active_partitions()
