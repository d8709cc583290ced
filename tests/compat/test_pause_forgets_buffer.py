"""Guard :mod:`stream_app.compat.pause_forgets_buffer`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stream_app.compat import buffer_drop, pause_forgets_buffer
from tests.compat.guard_cases import INPUT, both_versions, consumer_of, invariant, new_app


@both_versions(pause_forgets_buffer)
async def test_a_paused_partition_is_neither_active_nor_buffered(
    impl: Callable[..., Any], upstream: bool
) -> None:
    consumer = consumer_of(new_app())
    consumer._set_active_tps({INPUT})
    consumer.on_buffer_full(INPUT)  # the agent's queue filled: back-pressure
    impl(consumer, {INPUT})  # a rebalance pauses the partition for table recovery
    with invariant(upstream):
        assert INPUT not in consumer._buffered_partitions
        buffer_drop.upstream(consumer, INPUT)  # the queue drained (or was cleared)
        assert INPUT not in consumer._get_active_partitions()
    assert INPUT in consumer._paused_partitions
