"""Bulk restore (:mod:`stream_app.state.bulk_restore`) against the real broker: a
changelog read from each partition's persisted offset to its end lands in RocksDB as
Faust's own restore would write it (puts, tombstones, last offset), and a worker
whose state was wiped restores that way and serves every user's full history."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import rocksdict
from aiokafka.admin import NewTopic
from aiokafka.structs import TopicPartition

from stream_app.harness import Stack
from stream_app.kafka import clients
from stream_app.kafka.admin import ensure_topics
from stream_app.query import fetch_state
from stream_app.serializers import decode_value
from stream_app.state import bulk_restore
from stream_app.state.rocksdb import Store
from tests.integration.kafka_io import read_n, send_all
from tests.integration.test_pipeline import event

pytestmark = [pytest.mark.broker]

OFFSET_KEY = Store.offset_key


class FakeStore:
    """What bulk restore uses of a Faust RocksDB store: a DB per partition and the
    persisted offset read from it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dbs: dict[int, rocksdict.Rdict] = {}

    def _db_for_partition(self, partition: int) -> rocksdict.Rdict:
        if partition not in self.dbs:
            path = str(self.root / f"p{partition}")
            self.dbs[partition] = rocksdict.Rdict(path, rocksdict.Options(raw_mode=True))
        return self.dbs[partition]

    def persisted_offset(self, tp: Any) -> int | None:
        offset = self._db_for_partition(tp.partition).get(OFFSET_KEY)
        return None if offset is None else int(offset)


async def produce(stack: Stack, topic: str, records: list[tuple[int, bytes, bytes | None]]) -> None:
    producer = clients.producer(stack.settings)
    await producer.start()
    try:
        for partition, key, value in records:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


async def test_a_changelog_lands_as_faust_would_write_it(stack: Stack, tmp_path: Path) -> None:
    topic = f"{stack.settings.app_id}-bulk-changelog"
    await ensure_topics(stack.settings, [NewTopic(topic, 2, 1)])
    p0 = [(0, f"k{i}".encode(), f"v{i}".encode()) for i in range(100)]
    p0 += [(0, b"k5", None), (0, b"k7", b"new"), (0, b"k5", b"back"), (0, b"k9", None)]
    p1 = [(1, f"j{i}".encode(), f"w{i}".encode()) for i in range(30)]
    await produce(stack, topic, p0 + p1)
    store = FakeStore(tmp_path)
    # Partition 1 already holds offsets 0..9 locally: only the rest is read.
    store._db_for_partition(1)[OFFSET_KEY] = b"9"

    class TP:
        def __init__(self, partition: int) -> None:
            self.topic, self.partition = topic, partition

    written = await bulk_restore.restore(stack.settings, store, [TP(0), TP(1)], OFFSET_KEY)
    assert written == {0: len(p0), 1: len(p1) - 10}
    db0 = store.dbs[0]
    assert db0[b"k5"] == b"back" and db0[b"k7"] == b"new" and db0.get(b"k9") is None
    assert db0[b"k42"] == b"v42"
    assert db0[OFFSET_KEY] == str(len(p0) - 1).encode()
    assert store.dbs[1][OFFSET_KEY] == b"29" and store.dbs[1].get(b"j3") is None  # not re-read
    assert store.dbs[1][b"j29"] == b"w29"
    # Nothing new: nothing read.
    assert await bulk_restore.restore(stack.settings, store, [TP(0), TP(1)], OFFSET_KEY) == {}


async def test_a_failed_bulk_restore_leaves_the_rest_to_faust(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any) -> dict[int, int]:
        raise bulk_restore.Stalled("no changelog records for 30 s, 1 left")

    monkeypatch.setattr(bulk_restore, "restore_all", broken)
    await bulk_restore.restore_or_defer(stack.settings, [])
    assert "Faust's recovery reads the rest" in caplog.text


async def test_several_tables_are_read_by_one_consumer(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small fetches: many write batches per partition.
    monkeypatch.setattr(bulk_restore, "MAX_RECORDS", 7)
    topics = [f"{stack.settings.app_id}-t{i}-changelog" for i in range(3)]
    await ensure_topics(stack.settings, [NewTopic(t, 2, 1) for t in topics])
    for i, topic in enumerate(topics):
        records = [
            (p, f"k{n}".encode(), f"{topic}:{p}:{n}".encode())
            for p in (0, 1)
            for n in range(50 * (i + 1))
        ]
        await produce(stack, topic, records)
    stores = [FakeStore(tmp_path / f"t{i}") for i in range(3)]
    jobs = [
        bulk_restore.Job(s, [TopicPartition(t, 0), TopicPartition(t, 1)], OFFSET_KEY)
        for s, t in zip(stores, topics, strict=True)
    ]
    written = await bulk_restore.restore_all(stack.settings, jobs)
    assert written == {
        TopicPartition(t, p): 50 * (i + 1) for i, t in enumerate(topics) for p in (0, 1)
    }
    for i, (store, topic) in enumerate(zip(stores, topics, strict=True)):
        n = 50 * (i + 1)
        for p in (0, 1):
            db = store.dbs[p]
            assert db[OFFSET_KEY] == str(n - 1).encode()
            assert (
                db[b"k0"] == f"{topic}:{p}:0".encode()
                and db[f"k{n - 1}".encode()] == f"{topic}:{p}:{n - 1}".encode()
            )


async def test_a_wiped_worker_restores_in_bulk_and_serves_full_histories(stack: Stack) -> None:
    s = stack.settings
    worker = stack.worker().start()
    worker.wait_ready()
    now = int(time.time() * 1000)
    users, per_user = 200, 4
    msgs = [
        (f"u{u}".encode(), event(f"u{u}", f"i{(u + r) % 37}", now + r * users + u, f"e{r}-{u}"))
        for r in range(per_user)
        for u in range(users)
    ]
    await send_all(s.bootstrap, s.input_topic, msgs)
    await read_n(s.bootstrap, s.output_topic, len(msgs), timeout=120)
    worker.kill()
    shutil.rmtree(worker.env["STREAMREC_DATA_DIR"])
    worker.start()
    await asyncio.to_thread(worker.wait_ready, 120)
    assert "bulk-restored" in worker.log(), worker.log_tail()
    probe = [(b"u7", event("u7", "i1", now + 10**6, "probe"))]
    await send_all(s.bootstrap, s.input_topic, probe)
    url = f"http://127.0.0.1:{worker.env['STREAMREC_WEB_PORT']}"
    deadline = time.monotonic() + 120
    while True:  # state is written locally once the probe's recommendation is delivered
        doc = await asyncio.to_thread(fetch_state, url, "u7")
        if "probe" in [e["event_id"] for e in doc["events"]] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert [e["event_id"] for e in doc["events"]] == [f"e{r}-7" for r in range(per_user)] + [
        "probe"
    ]
    out = await read_n(s.bootstrap, s.output_topic, 10**9, timeout=5)
    (rec,) = [r for r in (decode_value(x.value) for x in out) if r["source_event_id"] == "probe"]
    assert len(rec["influences"]) >= 2, rec  # made from the restored history
