"""Guard :mod:`stream_app.compat.buffer_drop`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stream_app.compat import buffer_drop, pause_forgets_buffer
from tests.compat.guard_cases import INPUT, INPUT_2, both_versions, consumer_of, invariant, new_app


@both_versions(buffer_drop)
async def test_a_buffer_drop_never_reactivates_a_paused_partition(
    impl: Callable[..., Any], upstream: bool
) -> None:
    consumer = consumer_of(new_app())
    consumer._set_active_tps({INPUT, INPUT_2})
    pause_forgets_buffer.upstream(consumer, {INPUT})  # paused for table recovery
    consumer.on_buffer_full(INPUT)  # its queue still held records from before the pause
    consumer.on_buffer_full(INPUT_2)
    impl(consumer, INPUT)
    impl(consumer, INPUT_2)
    assert INPUT_2 in consumer._get_active_partitions()  # back-pressure still works
    with invariant(upstream):
        assert INPUT not in consumer._get_active_partitions()
    assert not consumer._buffered_partitions
