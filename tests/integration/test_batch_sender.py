"""Records sent as Kafka record batches (:mod:`stream_app.kafka.batches`), on the real broker."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream_app.kafka.batches import BatchSender, Record, last_offsets
from stream_app.routing import partition_for
from tests.integration.kafka_io import read_all

pytestmark = [pytest.mark.broker]


async def test_batches_keep_order_place_by_key_and_report_offsets(bootstrap: str) -> None:
    out, changelog = f"out-{uuid.uuid4().hex[:8]}", f"cl-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(out, 3, 1), NewTopic(changelog, 2, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        app = SimpleNamespace(producer=SimpleNamespace(_ensure_producer=lambda: producer))
        sender = BatchSender(app, batch_bytes=16 * 1024)  # the smallest: several per partition
        records: list[Record] = []
        for n in range(2000):
            key = f"user{n % 97}".encode()
            records.append((out, None, key, b"%d" % n + b"x" * 50, [("h", b"1")]))
            records.append((changelog, n % 2, key, None if n % 10 == 0 else b"%d" % n, None))
        sent = await sender.send(records)
        assert len(sent) > 5  # 16 KiB builders: more than one per partition
        await asyncio.gather(*(fut for fut, _ in sent))
        last = last_offsets(sent)
    finally:
        await producer.stop()
    got = await read_all(bootstrap, out, 3)
    assert len(got) == 2000
    assert all(r.partition == partition_for(r.key, 3) for r in got)
    assert all(r.headers == (("h", b"1"),) for r in got)
    for p in range(3):
        values = [int(r.value.split(b"x")[0]) for r in got if r.partition == p]
        assert values == sorted(values)  # a partition's records in the order given
        assert (
            last[next(tp for tp in last if tp.topic == out and tp.partition == p)]
            == len(values) - 1
        )
    logged = await read_all(bootstrap, changelog, 2)
    assert sum(r.value is None for r in logged) == 200  # tombstones kept
    assert {tp.partition: o for tp, o in last.items() if tp.topic == changelog} == {0: 999, 1: 999}
