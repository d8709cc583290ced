"""Narrow fixes for faust-streaming 0.15.3: events lost or duplicated around rebalances.

Written against, and pinned to, faust-streaming **0.15.3** (checked at import; the
installed ``faust/tables/recovery.py`` and ``faust/transport/consumer.py`` were
read line by line). Applied once by :func:`apply`, which ``stream_app.app`` calls.

The bug: upstream issue #596 (related: #606, PR #707)
-----------------------------------------------------
After a rebalance every assigned partition is paused and tables are restored from
their changelogs. ``Recovery.on_recovery_completed`` (recovery.py:624-667) then:

1. resumes the input (stream) partitions (recovery.py:649);
2. awaits ``consumer.perform_seek()`` -- one ``committed()`` round trip per
   assigned partition, tens of ms (recovery.py:655);
3. calls ``app.flow_control.resume()``, which *clears* every stream queue
   (recovery.py:659; ``mode.utils.queues.FlowControlEvent.resume``).

During step 2 the fetcher (``Consumer._drain_messages``, consumer.py:1170) already
delivers input records into the agent's queue, and the agent processes some. When
the seek lands, ``_read_offset`` is reset to the committed offset, but the drain
loop is still iterating its *stale* batch (with ``broker_max_poll_records=None``
that is a partition's whole backlog) and moves ``_read_offset`` to that batch's
end, adding a fake "gap" on the way (consumer.py:1209-1223, ``_add_gap``). Then
step 3 empties the queue. The refetch from the committed offset is dropped below
``_read_offset``, except the batch's last record, which passes the ``>=`` test.
Measured outcome (tests/integration/test_recovery.py without this module):

* records that sat in the queue at step 3 are never processed: **lost**, and the
  committed offset either stalls at the hole or jumps over it via the fake gap;
* records the agent processed during step 2 are processed again after the seek,
  and the last record of each partition is delivered twice: **duplicates**
  (e.g. exactly ``e9996..e9999``, one per input partition).

The fix
-------
``on_recovery_completed`` below is the upstream method with one change of order:
the stream partitions are seeked to their committed offsets *while still paused*,
the stream queues are cleared, and only then are the partitions resumed. No input
record can be fetched before its partition's read offset has been reset, so there
is no stale batch, nothing in a queue to clear, and no fake gap (given the
snapshot fix below, which this order needs). Everything else
(signals, table callbacks, generation check, fetcher start) is unchanged.
``Recovery._resume_streams`` (recovery.py:302-335) has the same order but only
runs for apps without tables; streamrec always has tables, so it is left alone.

Why it is safe: nothing is processed during the seek that was processed before
(the agent sees input only after it), the committed offset is where the previous
owner stopped, and at-least-once still holds because offsets are committed only
after acks. The changelog/standby partitions are untouched: they were already
resumed by recovery and ``perform_seek`` treats them exactly as before.

Two guards with the same rule: a paused partition delivers nothing
------------------------------------------------------------------
1. Fetch with a snapshot of the active partitions. ``Consumer._wait_next_records``
(consumer.py:798-806) hands its *live* ``_active_partitions`` set to the consumer
thread, which calls aiokafka's ``Fetcher.fetched_records(partitions, timeout=1)``
with it (drivers/aiokafka.py:1088-1108). That call may wait up to a second while
the event loop pauses and resumes partitions, and aiokafka reads an empty set as
"every partition" (``if partitions and tp not in partitions``, fetcher.py:1221).
So when recovery pauses the changelogs ("Done reading from changelog topics") and
the set is momentarily empty, a fetch in flight returns *input* records; Faust's
``getmany`` drops them as inactive (consumer.py:758-766), but aiokafka has already
moved its position past them. Upstream's late seek happened to repair that; with
the seek first (above) it left an event unprocessed until the next rebalance
(seen once in test_pipeline's memory-store restart). ``_getmany`` below passes a
copy, taken on the event loop, and skips the call when it is empty.

2. Back-pressure bookkeeping. ``Consumer.on_buffer_full`` (consumer.py:547) moves an input
partition to ``_buffered_partitions``; ``on_buffer_drop`` (consumer.py:554) later
puts it back into the *active* set, without checking that a rebalance paused it
meanwhile. The drop callback fires from the agent's next ``queue.get()`` on an
empty queue, which a rebalance's queue clear makes likely, so an input partition
could be re-activated during table recovery and its events applied to half
restored tables. Here ``pause_partitions`` forgets buffered state and
``on_buffer_drop`` never re-activates a paused partition.

3. A seek lands where processing stopped, also without a committed offset.
aiokafka's ``seek_to_committed`` (consumer/consumer.py, ``if offset and offset > 0``)
leaves a partition's position untouched when the group has no committed offset
for it yet (or it is 0). Seen in the chaos harness (scenario a, SIGTERM one of
two workers): the surviving worker had read six records of a partition it kept,
the rebalance suspended the flow so they were dropped undelivered, and the seek
after recovery left the position after them: the next record processed was the
seventh; six events were **lost** (the first commit for that partition was
still pending). ``_perform_seek`` below seeks such input partitions to offset 0
(the log start if 0 is gone), where a group with no commit starts anyway
(``auto_offset_reset=earliest``): at-least-once, replays are absorbed by the
idempotent state.

4. Commit before forgetting. ``Consumer.on_partitions_revoked`` (consumer.py:642-664)
drops the acked offsets, read offsets and committed offsets of the revoked
partitions and only *then* runs the app's revoke handler, whose "wait for
streams, then commit" therefore has nothing left to commit for exactly the
partitions being handed over. Every rebalance so discarded up to a commit
interval of finished work: the next owner reprocessed it (**duplicates**; the
chaos harness counted hundreds per rebalance), and where no offset had been
committed yet, guard 3's case followed. ``_on_partitions_revoked`` below runs
the handler first (aiokafka calls it before the assignment changes, so the
commit is made with the current generation, the usual "commit in the revoke
listener" pattern) and then clears the same structures.

5. Input fetched across a seek, or while paused, is read again. A fetch runs on
the consumer thread for up to a second; when a rebalance completes meanwhile,
its records arrive after the seek to the committed offsets. Seen in the chaos
harness (scenario a, after guard 4): the surviving worker seeked a partition it
kept to offset 91, then received records 91-99 from the fetch in flight while
its flow was still suspended; ``_drain_messages`` skipped them undelivered and
moved past them, and the next record processed was 100: nine events **lost**.
``_getmany`` below (the wrapper of guard 1) drops input records from a fetch
that straddled a seek and seeks again, and for input records that arrive while
the flow is suspended or their partition paused, drops them and seeks their
partition back to the first of them, so they are fetched again once it resumes.
Changelog records are left to upstream, as before.

6. An idempotent producer. Faust enables aiokafka's idempotence only inside
transactions (drivers/aiokafka.py:1323-1326). Without it, a produce request
that times out while the broker restarts is retried and can be written twice:
the chaos harness (scenario d, a 5 s broker outage) once counted one duplicate
recommendation. ``_settings_extra`` below always asks for ``acks=all`` and
idempotence, so the broker drops a retried batch it already has. streamrec
already runs with ``acks=-1``; idempotence needs nothing else of the broker.

7. A commit asked for while another is in flight still commits. ``Consumer.commit``
(consumer.py:936-961) lets one coroutine commit at a time; any other caller
waits for that commit and then *returns without committing*
(``maybe_wait_for_commit_to_finish``, consumer.py:963). The commit in flight took
its offsets when it started, so the caller's newer work is not committed: the
final commit of a clean stop ("wait for streams, then commit") and the commit of
a revoke handler (guard 4) silently became no-ops whenever the periodic commit
was running. A commit flushes the producer first, which takes seconds when the
worker is overloaded; the chaos harness (scenario a on a loaded machine) then
counted 214 and 1,027 duplicate recommendations after a plain SIGTERM.
``_wait_for_commit_in_flight`` below waits until no commit is in flight and
then lets the caller make its own.
"""

from __future__ import annotations

import asyncio
import logging
from importlib.metadata import version
from typing import Any, cast

log = logging.getLogger(__name__)

PINNED_FAUST = "0.15.3"
_installed = version("faust-streaming")
if _installed != PINNED_FAUST:  # pragma: no cover - guarded by pyproject's pin
    raise ImportError(
        f"stream_app.faust_patches was written against faust-streaming=={PINNED_FAUST}, "
        f"found {_installed}: re-check upstream issue #596 and this module before upgrading"
    )

from faust.tables.recovery import Recovery  # noqa: E402
from faust.transport.consumer import (  # noqa: E402
    Consumer,
    ThreadDelegateConsumer,
    ensure_TPset,
)
from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer  # noqa: E402

_APPLIED = False


async def _on_recovery_completed(self: Recovery, generation_id: int = 0) -> None:
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


_upstream_pause_partitions = Consumer.pause_partitions


def _pause_partitions(self: Consumer, tps: Any) -> None:
    tpset = ensure_TPset(tps)
    _upstream_pause_partitions(self, tpset)
    self._buffered_partitions.difference_update(tpset)


def _on_buffer_drop(self: Consumer, tp: Any) -> None:
    buffered = self._buffered_partitions
    if tp in buffered:
        buffered.discard(tp)
        if tp not in self._paused_partitions:
            self._get_active_partitions().add(tp)


async def _on_partitions_revoked(self: Consumer, revoked: Any) -> None:
    """``Consumer.on_partitions_revoked`` with the app's handler (wait, commit) first."""
    span = self.app._start_span_from_rebalancing("on_partitions_revoked")
    with span:
        if self._active_partitions is not None:
            self._active_partitions.difference_update(revoked)
        self._paused_partitions.difference_update(revoked)
        await self._on_partitions_revoked(revoked)  # upstream: after the clearing below
        for tp in revoked:
            self._gap.pop(tp, None)
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            self._read_offset.pop(tp, None)
            self._committed_offset.pop(tp, None)


_upstream_perform_seek = Consumer.perform_seek


async def _perform_seek(self: Consumer) -> None:
    self.__dict__["_streamrec_seeks"] = self.__dict__.get("_streamrec_seeks", 0) + 1
    await _upstream_perform_seek(self)
    acks_enabled_for = self.app.topics.acks_enabled_for
    uncommitted = [
        tp
        for tp in self.assignment()
        if acks_enabled_for(tp.topic) and not self._committed_offset.get(tp)
    ]
    for tp in uncommitted:
        log.info("%s has no committed offset: seeking to its start", tp)
        await self.seek(tp, 0)


async def _getmany(self: ThreadDelegateConsumer, active_partitions: Any, timeout: float) -> Any:
    if active_partitions is not None:
        active_partitions = set(active_partitions)  # snapshot, taken on the event loop
        if not active_partitions:
            return {}  # aiokafka would read an empty set as "every partition"
    seeks = self.__dict__.get("_streamrec_seeks", 0)
    records = await self._thread.getmany(active_partitions, timeout)
    acks_enabled_for = self.app.topics.acks_enabled_for
    inputs = {tp: recs for tp, recs in records.items() if recs and acks_enabled_for(tp.topic)}
    if not inputs:
        return records
    if self.__dict__.get("_streamrec_seeks", 0) != seeks:
        # A seek landed while this fetch was in flight: its records may predate it.
        for tp in inputs:
            del records[tp]
        log.info("input records fetched across a seek: dropped, seeking again")
        await self.perform_seek()
        return records
    active = self._get_active_partitions()
    for tp, recs in inputs.items():
        if not self.flow_active or (tp not in active and tp not in self._buffered_partitions):
            # Faust would skip them undelivered, with aiokafka's position already
            # past them: read them again once the partition is resumed.
            del records[tp]
            self._thread.seek(tp, recs[0].offset)
    return records


async def _wait_for_commit_in_flight(self: Consumer) -> bool:
    """Wait out any commit in flight; never answer "already committed" (False)."""
    while (fut := self._commit_fut) is not None:
        try:
            await fut
        except asyncio.CancelledError:
            if not fut.cancelled():
                raise  # this task was cancelled, not the commit it waited for
    return False


def _settings_extra(self: Any) -> Any:
    return {"acks": "all", "enable_idempotence": True}


def apply() -> None:
    """Install the patches (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    cast(Any, Recovery).on_recovery_completed = _on_recovery_completed
    cast(Any, Consumer).pause_partitions = _pause_partitions
    cast(Any, Consumer).on_buffer_drop = _on_buffer_drop
    cast(Any, ThreadDelegateConsumer)._getmany = _getmany
    cast(Any, Consumer).perform_seek = _perform_seek
    cast(Any, Consumer).on_partitions_revoked = _on_partitions_revoked
    cast(Any, Consumer).maybe_wait_for_commit_to_finish = _wait_for_commit_in_flight
    cast(Any, AIOKafkaProducer)._settings_extra = _settings_extra
    _APPLIED = True
    log.debug("faust-streaming %s patched: recovery-end seek while paused (#596)", PINNED_FAUST)
