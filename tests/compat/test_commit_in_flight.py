"""Guard :mod:`stream_app.compat.commit_in_flight`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import MethodType
from typing import Any

from faust.transport.consumer import Consumer

from stream_app.compat import commit_in_flight
from tests.compat.guard_cases import both_versions, consumer_of, invariant, new_app


@both_versions(commit_in_flight)
async def test_a_commit_asked_for_while_another_runs_still_commits(
    impl: Callable[..., Any], upstream: bool
) -> None:
    consumer = consumer_of(new_app())
    calls: list[str] = []

    async def force_commit(topics: Any, start_new_transaction: bool = True) -> bool:
        calls.append(f"{min(topics)} starts")
        await asyncio.sleep(0.05)  # e.g. the producer flush every commit does first
        calls.append(f"{min(topics)} done")
        return True

    consumer.force_commit = force_commit
    consumer.maybe_wait_for_commit_to_finish = MethodType(impl, consumer)
    periodic = asyncio.create_task(Consumer.commit(consumer, {"periodic"}))
    await asyncio.sleep(0.01)
    # The final commit of a clean stop: upstream waits for "periodic" and returns
    # False, leaving the work done since "periodic" started uncommitted.
    final = await Consumer.commit(consumer, {"final"})
    assert await periodic
    with invariant(upstream):
        assert final
        assert calls == ["periodic starts", "periodic done", "final starts", "final done"]
