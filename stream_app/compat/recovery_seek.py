"""Seek the input partitions to their committed offsets while they are still paused.

Invariant: after a table restore no input record is fetched or queued before the seek
to the committed offsets has landed; the stream queues are cleared before the input
partitions are resumed.
Upstream: ``Recovery.on_recovery_completed`` (faust/tables/recovery.py:624-667) resumes
the input partitions (:649), awaits ``consumer.perform_seek()`` (:655), then clears
every stream queue (``app.flow_control.resume()``, :659): input fetched during the seek
is lost (cleared from a queue) or processed twice (refetched). This is that method with
the order changed: seek, clear, resume. It needs :mod:`.fetch_guard`'s snapshot.
Issue: faust-streaming #596 (related: #606, PR #707; #216 for apps without tables).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from faust.tables.recovery import Recovery

OWNER: Final = Recovery
NAME: Final = "on_recovery_completed"
upstream: Final = Recovery.on_recovery_completed


async def on_recovery_completed(self: Recovery, generation_id: int = 0) -> None:
    """``Recovery.on_recovery_completed`` with the stream seek done while paused (#596)."""
    app: Any = self.app
    consumer = app.consumer
    self.log.info("Restore complete!")
    await app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callback_coros = [
        asyncio.ensure_future(
            table.on_recovery_completed(
                self.actives_for_table[table],
                self.standbys_for_table[table],
            )
        )
        for table in self.tables.values()
    ]
    if callback_coros:
        await asyncio.wait(callback_coros)
    assignment = consumer.assignment()
    if app.consumer_generation_id != generation_id:
        self.log.warning(
            f"Recovery rebalancing again app id {app.consumer_generation_id} param {generation_id}"
        )
        return
    stream_tps = {tp for tp in assignment if not self._is_changelog_tp(tp)}
    if assignment:
        # Upstream resumes stream_tps *before* this seek: the #596 window.
        self.log.info("Seek stream partitions to committed offsets (still paused).")
        await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
    self.completed.set()
    self.log.dev("Resume stream partitions")
    app.flow_control.resume()  # clears stream queues; nothing of stream_tps can be there
    consumer.resume_partitions(stream_tps)
    consumer.resume_flow()
    await app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    app.on_rebalance_end()
    self.log.info("Worker ready")


patched: Final = on_recovery_completed
