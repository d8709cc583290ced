"""A commit asked for while another is in flight waits for it, then commits too.

Invariant: ``Consumer.commit`` called during another commit commits the offsets acked
by the time it was called (the one in flight took its offsets when it started).
Upstream: ``Consumer.commit`` (faust/transport/consumer.py:936-961) asks
``maybe_wait_for_commit_to_finish`` (:963-978), which waits for the commit in flight and
answers True, "already committed": the caller returns without committing. The final
commit of a clean stop, and the revoke handler's (:mod:`.revoke_commit_first`), became
no-ops whenever the periodic commit was running; a commit flushes the producer first,
which takes seconds on a loaded worker.
Issue: none known upstream (found with tests/integration/test_chaos.py).
"""

from __future__ import annotations

import asyncio
from typing import Final

from faust.transport.consumer import Consumer

OWNER: Final = Consumer
NAME: Final = "maybe_wait_for_commit_to_finish"
upstream: Final = Consumer.maybe_wait_for_commit_to_finish


async def wait_for_commit_in_flight(self: Consumer) -> bool:
    """Wait out any commit in flight; never answer "already committed" (False)."""
    while (fut := self._commit_fut) is not None:
        try:
            await fut
        except asyncio.CancelledError:
            if not fut.cancelled():
                raise  # this task was cancelled, not the commit it waited for
    return False


patched: Final = wait_for_commit_in_flight
