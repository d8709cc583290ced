"""``streamrec trainer``: the Kafka side of the trainer service.

The trainer reads every input partition by assignment under its own group id
(``STREAMREC_TRAINER_GROUP``, by default ``<app id>-trainer``): it joins no
group rebalance, takes no partition from a worker, and the workers' offsets
are untouched. It starts at the offsets of its window snapshot, or at the
beginning of the retained log when there is none. At start it waits for the
broker as every command does (:mod:`stream_app.kafka.wait`); during an outage
the client keeps retrying, the loop keeps its window, and a failed offset
commit is logged and retried at the next snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from stream_app.kafka import clients
from stream_app.kafka.admin import ensure_topics
from stream_app.kafka.wait import retry, wait_for_kafka
from stream_app.settings import Settings
from stream_app.trainer.service import Trainer

log = logging.getLogger(__name__)
POLL_MS = 500
MAX_RECORDS = 5000


def group_id(settings: Settings) -> str:
    return settings.trainer_group or f"{settings.app_id}-trainer"


async def consume(trainer: Trainer, stop: asyncio.Event) -> None:
    s = trainer.settings
    await wait_for_kafka(s)
    await ensure_topics(s)
    consumer = clients.consumer(s, group_id=group_id(s), enable_auto_commit=False)
    await retry("Kafka (trainer consumer)", consumer.start, s, (KafkaError, OSError))
    tps = [TopicPartition(s.input_topic, p) for p in range(s.partitions)]
    consumer.assign(tps)
    for tp in tps:
        offset = trainer.window.offsets.get(tp.partition)
        if offset is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)
    log.info("trainer reading %s as group %s", s.input_topic, group_id(s))
    last_snapshot = time.monotonic()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
            for tp, records in batch.items():
                for r in records:
                    trainer.intake.take(r.value, tp.partition, r.headers or ())
                trainer.window.offsets[tp.partition] = records[-1].offset + 1
            if trainer.round is not None and trainer.round.done():
                trainer.finish_round()
            if trainer.due():
                trainer.start_round()
            if time.monotonic() - last_snapshot >= s.trainer_snapshot_s:
                await snapshot(trainer, consumer)
                last_snapshot = time.monotonic()
    finally:
        await trainer.wait_round()
        await snapshot(trainer, consumer)
        await consumer.stop()


async def snapshot(trainer: Trainer, consumer: AIOKafkaConsumer) -> None:
    """Write the window, then commit the offsets it holds (best effort)."""
    await asyncio.get_running_loop().run_in_executor(None, trainer.snapshot)
    offsets = {
        TopicPartition(trainer.settings.input_topic, p): o
        for p, o in trainer.window.offsets.items()
    }
    if not offsets:
        return
    try:
        await consumer.commit(offsets)
    except KafkaError as exc:
        log.warning("offset commit failed (retried at the next snapshot): %s", exc)


def run_trainer(settings: Settings) -> None:
    import prometheus_client
    import torch

    torch.set_num_threads(settings.trainer_threads)
    if settings.trainer_metrics_port:
        prometheus_client.start_http_server(settings.trainer_metrics_port, settings.metrics_host)
    trainer = Trainer(settings)
    trainer.restore()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await consume(trainer, stop)

    asyncio.run(main())
    log.info("trainer stopped")
