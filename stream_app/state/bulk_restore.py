"""Restore RocksDB table partitions from their changelogs in bulk, before Faust's
recovery runs.

Faust restores a table by passing every changelog record through its stream
machinery: a fetch, an event object, a flow-controlled queue, ``asyncio.wait_for``
per record, bookkeeping, then a write batch of 1,000. On the 2-core VM that ran at
about 3,000 records/s (``scripts/bench_recovery.py``): minutes for 100,000 users.

Here one plain consumer reads every newly assigned active changelog partition of
every table at once, each from the store's persisted offset to the partition's end
offset, and writes what it reads as Faust's ``apply_changelog_batch`` would (a put
per record, a delete per tombstone, in offset order), in one RocksDB write batch
per partition and fetch that also records the last offset written (Faust's own
offset key), so the data and its offset land together. Faust's
recovery then starts from that offset and reads only what arrived meanwhile, with
every recovery guard of :mod:`stream_app.compat` in place: only the bulk of the
reading is moved, not the hand-over to the stream. Standby partitions are left to
Faust.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import rocksdict
from aiokafka.structs import TopicPartition

from stream_app.kafka import clients
from stream_app.settings import Settings

log = logging.getLogger(__name__)

MAX_RECORDS = 20_000  # per fetch of all partitions together
STALL_S = 30.0  # no progress this long (a broker gone): leave the rest to Faust


class Stalled(TimeoutError):
    """The changelog stopped arriving before its end offset."""


@dataclass(frozen=True, slots=True)
class Job:
    """One table's store, the changelog partitions (Faust TPs) to restore into it,
    and the key under which Faust keeps a partition's persisted offset."""

    store: Any
    tps: Sequence[Any]
    offset_key: bytes


async def restore(
    settings: Settings, store: Any, tps: Iterable[Any], offset_key: bytes
) -> dict[int, int]:
    """Read each of ``tps`` (Faust TPs of ``store``'s changelog) from after its
    persisted offset to its end into ``store``; returns records written per partition."""
    written = await restore_all(settings, [Job(store, list(tps), offset_key)])
    return {tp.partition: n for tp, n in written.items()}


async def restore_all(settings: Settings, jobs: Sequence[Job]) -> dict[TopicPartition, int]:
    """Every job's partitions, read by one consumer; returns records written per partition."""
    targets: dict[TopicPartition, tuple[Any, int, bytes]] = {}
    for job in jobs:
        for tp in job.tps:
            persisted = job.store.persisted_offset(tp)
            start = 0 if persisted is None else persisted + 1
            targets[TopicPartition(tp.topic, tp.partition)] = (job.store, start, job.offset_key)
    if not targets:
        return {}
    consumer = clients.consumer(
        settings,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    started = time.monotonic()
    try:
        consumer.assign(list(targets))
        ends = await consumer.end_offsets(list(targets))
        todo = {tp for tp, (_, start, _) in targets.items() if start < ends[tp]}
        for tp in todo:
            consumer.seek(tp, targets[tp][1])
        written = await _read(consumer, targets, ends, todo)
    finally:
        await consumer.stop()
    _log_rates(written, time.monotonic() - started)
    return written


async def _read(
    consumer: Any,
    targets: dict[TopicPartition, tuple[Any, int, bytes]],
    ends: dict[TopicPartition, int],
    todo: set[TopicPartition],
) -> dict[TopicPartition, int]:
    """Fetch ``todo`` up to ``ends``, writing each partition's part of a fetch as it
    comes. The writes are not handed to a thread: the restore is CPU-bound, and on the
    2-core VM a writer thread overlapping the next fetch made it 10-15% slower (the
    record decoding and the write batches' building both hold the GIL)."""
    written: dict[TopicPartition, int] = {}
    progress = time.monotonic()
    while todo:
        batches = await consumer.getmany(*todo, timeout_ms=1000, max_records=MAX_RECORDS)
        for tp, records in batches.items():
            if records:
                store, _, offset_key = targets[tp]
                write(store._db_for_partition(tp.partition), records, offset_key)
                written[tp] = written.get(tp, 0) + len(records)
                progress = time.monotonic()
        if time.monotonic() - progress > STALL_S:
            raise Stalled(f"no changelog records for {STALL_S:.0f} s, {len(todo)} left")
        for tp in list(todo):
            if await consumer.position(tp) >= ends[tp]:
                todo.discard(tp)
    return written


def _log_rates(written: dict[TopicPartition, int], elapsed: float) -> None:
    total = sum(written.values())
    if not total:
        return
    per_topic: dict[str, int] = {}
    for tp, n in written.items():
        per_topic[tp.topic] = per_topic.get(tp.topic, 0) + n
    log.info(
        "bulk-restored %d changelog records (%s) in %.1f s (%.0f/s)",
        total,
        ", ".join(f"{topic}: {n}" for topic, n in sorted(per_topic.items())),
        elapsed,
        total / max(elapsed, 1e-9),
    )


async def restore_or_defer(settings: Settings, jobs: Sequence[Job]) -> None:
    """:func:`restore_all`; if it fails (a broker gone, a stall), what it wrote stays
    (each write batch carries its offset) and Faust's own recovery reads the rest."""
    try:
        await restore_all(settings, jobs)
    except Exception as exc:
        log.warning("bulk restore stopped (%r); Faust's recovery reads the rest", exc)


def write(db: rocksdict.Rdict, records: list[Any], offset_key: bytes) -> None:
    """Apply ``records`` (one partition's, in offset order) as Faust does, and their
    last offset, in one write batch."""
    batch = rocksdict.WriteBatch(raw_mode=True)
    for r in records:
        if r.value is None:
            batch.delete(r.key)
        else:
            batch.put(r.key, r.value)
    batch.put(offset_key, str(records[-1].offset).encode())
    db.write(batch)
