"""Guards of stream_app.faust_patches that can be shown without a broker."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.transport.consumer import Consumer

from stream_app import compat as faust_patches


class CommitRecorder:
    """Just what ``Consumer.commit`` uses: a commit that takes a while."""

    _commit_fut: asyncio.Future[Any] | None = None

    def __init__(self) -> None:
        self.app = SimpleNamespace(client_only=False)
        self.loop = asyncio.get_running_loop()
        self.calls: list[str] = []

    async def maybe_wait_for_commit_to_finish(self) -> bool:
        return bool(await Consumer.maybe_wait_for_commit_to_finish(self))  # type: ignore[arg-type]

    async def force_commit(self, topics: Any, start_new_transaction: bool = True) -> bool:
        self.calls.append(f"{topics} starts")
        await asyncio.sleep(0.05)  # e.g. the producer flush every commit does first
        self.calls.append(f"{topics} done")
        return True


async def test_a_commit_asked_for_while_another_runs_still_commits() -> None:
    faust_patches.apply()
    consumer = CommitRecorder()
    periodic = asyncio.create_task(Consumer.commit(consumer, "periodic"))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    # The final commit of a clean stop: upstream waited for "periodic" and returned
    # False, leaving the work done since "periodic" started uncommitted.
    assert await Consumer.commit(consumer, "final")  # type: ignore[arg-type]
    assert await periodic
    assert consumer.calls == ["periodic starts", "periodic done", "final starts", "final done"]
