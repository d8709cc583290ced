"""Restore a RocksDB table partition from its changelog in bulk, before Faust's
recovery runs.

Faust restores a table by passing every changelog record through its stream
machinery: a fetch, an event object, a flow-controlled queue, ``asyncio.wait_for``
per record, bookkeeping, then a write batch of 1,000. On the 2-core VM that ran at
about 3,000 records/s (``scripts/bench_recovery.py``): minutes for 100,000 users.

Here a plain consumer reads each newly assigned active changelog partition from
the store's persisted offset to the partition's end offset, and writes what it
reads as Faust's ``apply_changelog_batch`` would (a put per record, a delete per
tombstone, in offset order), in one RocksDB write batch per fetch that also
records the last offset written (Faust's own offset key), so the data and its
offset land together. Faust's recovery then starts from that offset and reads
only what arrived meanwhile, with every recovery guard of :mod:`stream_app.compat`
in place: only the bulk of the reading is moved, not the hand-over to the stream.
Standby partitions are left to Faust.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import rocksdict
from aiokafka.structs import TopicPartition

from stream_app.kafka import clients
from stream_app.settings import Settings

log = logging.getLogger(__name__)

MAX_RECORDS = 20_000  # per fetch, one write batch each
STALL_S = 30.0  # no progress this long (a broker gone): leave the rest to Faust


class Stalled(TimeoutError):
    """The changelog stopped arriving before its end offset."""


async def restore(
    settings: Settings, store: Any, tps: Iterable[Any], offset_key: bytes
) -> dict[int, int]:
    """Read each of ``tps`` (Faust TPs of ``store``'s changelog) from after its
    persisted offset to its end into ``store``; returns records written per partition."""
    starts = {}
    for tp in tps:
        persisted = store.persisted_offset(tp)
        starts[TopicPartition(tp.topic, tp.partition)] = 0 if persisted is None else persisted + 1
    if not starts:
        return {}
    consumer = clients.consumer(
        settings,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    started = time.monotonic()
    written: dict[int, int] = {}
    try:
        consumer.assign(list(starts))
        ends = await consumer.end_offsets(list(starts))
        todo = {tp for tp, start in starts.items() if start < ends[tp]}
        for tp in todo:
            consumer.seek(tp, starts[tp])
        progress = time.monotonic()
        while todo:
            batches = await consumer.getmany(*todo, timeout_ms=1000, max_records=MAX_RECORDS)
            for tp, records in batches.items():
                if records:
                    write(store._db_for_partition(tp.partition), records, offset_key)
                    written[tp.partition] = written.get(tp.partition, 0) + len(records)
                    progress = time.monotonic()
            if time.monotonic() - progress > STALL_S:
                raise Stalled(f"no changelog records for {STALL_S:.0f} s, {len(todo)} left")
            for tp in list(todo):
                if await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
    finally:
        await consumer.stop()
    total = sum(written.values())
    if total:
        elapsed = time.monotonic() - started
        log.info(
            "bulk-restored %d changelog records of %s in %.1f s (%.0f/s)",
            total,
            next(iter(starts)).topic,
            elapsed,
            total / max(elapsed, 1e-9),
        )
    return written


async def restore_or_defer(
    settings: Settings, store: Any, tps: Iterable[Any], offset_key: bytes
) -> None:
    """:func:`restore`; if it fails (a broker gone, a stall), what it wrote stays (each
    write batch carries its offset) and Faust's own recovery reads the rest."""
    try:
        await restore(settings, store, tps, offset_key)
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
