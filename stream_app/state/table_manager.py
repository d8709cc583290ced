"""The worker's table manager: Faust's, with every table's newly assigned changelog
partitions bulk-restored together.

Faust's ``TableManager.on_rebalance`` (faust/tables/manager.py:187-207 in 0.15.3, the
version :mod:`stream_app.compat` pins) lets each table's store open its new
partitions, one table after another, then registers the changelog channels and hands
the assignment to the recovery service, which reads each partition's persisted
offset. Bulk restore (:mod:`stream_app.state.bulk_restore`) belongs between the two:
after every store opened its partitions, before recovery reads their offsets. Run
there, one consumer reads the changelogs of all tables at once, where a restore per
store read them one table after another. Without :func:`enable_bulk_restore` (or
with the memory store) this is Faust's method unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from faust.tables import TableManager as FaustTableManager
from faust.utils.tracing import traced_from_parent_span

from stream_app.settings import Settings
from stream_app.state import bulk_restore
from stream_app.state.rocksdb import Store

_bulk_restore: list[Settings] = []  # the worker's settings, once bulk restore is on


def enable_bulk_restore(settings: Settings) -> None:
    """Restore newly assigned active partitions in bulk, with ``settings``' clients."""
    _bulk_restore[:] = [settings]


class TableManager(FaustTableManager):
    """Faust's table manager, bulk-restoring between the stores and the recovery."""

    async def on_start(self) -> None:
        """Faust's, without its first ``sleep(1.0)``: that second gave tables declared
        late a chance before the set is closed, and it delays the consumer's subscription
        (so every start) by a second. Every table of the worker is declared before the app
        starts (:func:`stream_app.topology.declare`)."""
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()

    async def on_rebalance(
        self, assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0
    ) -> None:
        """Faust's: every table handles the rebalance, the changelog channels are
        updated, recovery starts; with the bulk restore of every table in between."""
        self._recovery_started.set()  # cannot add more tables.
        T = traced_from_parent_span()
        for table in self.values():
            await T(table.on_rebalance)(assigned, revoked, newly_assigned, generation_id)
        await self.bulk_restore(newly_assigned)
        await asyncio.sleep(0)
        await T(self._update_channels)()
        await asyncio.sleep(0)
        await T(self.recovery.on_rebalance)(assigned, revoked, newly_assigned, generation_id)

    async def bulk_restore(self, newly_assigned: Any) -> None:
        """Each bulk-restoring store's newly assigned active changelog partitions, read
        to their ends by one consumer, with every store's lock held."""
        if not _bulk_restore:
            return
        standbys = self.app.assignor.assigned_standbys()
        jobs = []
        for table in self.values():
            store = table.data
            if isinstance(store, Store):
                mine = table.changelog_topic.topics
                tps = [tp for tp in newly_assigned if tp.topic in mine and tp not in standbys]
                if tps:
                    jobs.append(bulk_restore.Job(store, tps, store.offset_key))
        if not jobs:
            return
        async with contextlib.AsyncExitStack() as locks:
            for job in jobs:
                await locks.enter_async_context(job.store.db_lock)
            await bulk_restore.restore_or_defer(_bulk_restore[0], jobs)
