"""Guard :mod:`stream_app.compat.recovery_seek`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from stream_app.compat import pause_forgets_buffer, recovery_seek
from tests.compat.guard_cases import (
    CHANGELOG,
    INPUT,
    INPUT_2,
    both_versions,
    consumer_of,
    invariant,
    new_app,
)


@both_versions(recovery_seek)
async def test_the_inputs_are_seeked_while_paused_then_resumed(
    impl: Callable[..., Any], upstream: bool
) -> None:
    app = new_app()
    consumer = consumer_of(app)
    recovery = app.tables.recovery  # the real Recovery service (not started)
    inputs = {INPUT, INPUT_2}
    consumer.assignment = lambda: inputs | {CHANGELOG}
    # The end of a table restore: inputs paused since the rebalance, flow suspended,
    # the changelog partition resumed by recovery.
    consumer._set_active_tps(inputs | {CHANGELOG})
    pause_forgets_buffer.upstream(consumer, inputs)
    consumer.stop_flow()
    app.flow_control.suspend()
    steps: list[str] = []
    fetchable_during_seek: set[Any] = set()

    async def perform_seek() -> None:  # a committed() round trip per partition
        steps.append("seek")
        await asyncio.sleep(0.01)
        # What the fetcher may hand to the agents while the seek is in flight.
        fetchable_during_seek.update(consumer._get_active_partitions() & inputs)

    def clear_queues(resume: Callable[[], None] = app.flow_control.resume) -> None:
        steps.append("clear stream queues")
        resume()

    def resume_partitions(tps: Any, resume: Any = consumer.resume_partitions) -> None:
        steps.append("resume inputs")
        resume(tps)

    async def maybe_start() -> None:  # would start the fetcher, which needs a broker
        steps.append("fetcher")

    consumer.perform_seek = perform_seek
    consumer.resume_partitions = resume_partitions
    app.flow_control.resume = clear_queues
    app._fetcher.maybe_start = maybe_start
    await impl(recovery, app.consumer_generation_id)
    assert consumer._get_active_partitions() >= inputs and consumer.flow_active
    with invariant(upstream):
        assert not fetchable_during_seek
        assert steps == ["seek", "clear stream queues", "resume inputs", "fetcher"]
