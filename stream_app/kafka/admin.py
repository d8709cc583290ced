"""Declare streamrec's topics before anything sends to them.

A topic that does not exist at the first send gets auto-created with the
broker's default partition count, not ours, so every topic is created up front.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka.admin import NewTopic

from stream_app.kafka import clients
from stream_app.settings import Settings

log = logging.getLogger(__name__)


# Kafka error codes a CreateTopics answer gives a principal without the right.
AUTHORIZATION_FAILED = {29: "TOPIC_AUTHORIZATION_FAILED", 31: "CLUSTER_AUTHORIZATION_FAILED"}


class TopicMismatch(RuntimeError):
    """An existing topic has a different partition count than configured."""


class TopicsNotAuthorized(PermissionError):
    """This client's principal may not create a topic it needs, and it is missing."""


def topic_specs(settings: Settings) -> list[NewTopic]:
    n, rf = settings.partitions, settings.replication_factor
    dlq_bytes = str(settings.dlq_max_bytes + 64 * 1024)
    return [
        NewTopic(settings.input_topic, n, rf),
        NewTopic(settings.output_topic, n, rf),
        NewTopic(
            settings.dlq_topic,
            n,
            rf,
            topic_configs={
                "retention.ms": str(settings.dlq_retention_ms),
                "max.message.bytes": dlq_bytes,
            },
        ),
        # Requests carry raw user ids: kept no longer than needed to carry them out.
        NewTopic(
            settings.control_topic,
            n,
            rf,
            topic_configs={"retention.ms": str(settings.control_retention_ms)},
        ),
        NewTopic(settings.audit_topic, 1, rf),
    ]


async def ensure_topics(
    settings: Settings, extra: Sequence[NewTopic] = (), timeout: float = 30.0
) -> None:
    """Create missing topics, wait until the broker's metadata lists them all with
    leaders, and fail clearly if the input topic is partitioned differently.

    The wait matters: a KRaft broker can leave a just-created topic out of the
    metadata it serves (or describe it with 0 partitions) for some ms. A Faust
    worker subscribing in that window ignores the topic, and a table whose
    changelog is missing then has 0 partitions and rejects every write.

    On a secured cluster a principal sees, and may create, only some topics (the
    producer: the input topic). Topics it may not create are left to the principal
    that may (the worker); only the input topic is required of everyone.
    """
    specs = topic_specs(settings) + list(extra)
    names = [t.name for t in specs]
    client = clients.admin(settings)
    await client.start()
    try:
        existing = set(await client.list_topics())  # only those it may describe
        missing = [t for t in specs if t.name not in existing]
        if missing:  # a concurrent creator only yields a per-topic error, not a raise
            response = await client.create_topics(missing)
            errors = {e[0]: e[1] for e in response.topic_errors}
            denied = [n for n, code in errors.items() if code in AUTHORIZATION_FAILED]
            if settings.input_topic in denied:
                raise TopicsNotAuthorized(
                    f"{settings.input_topic} does not exist and this principal may not "
                    f"create it ({AUTHORIZATION_FAILED[errors[settings.input_topic]]}): "
                    "start the worker first (it creates the topics) or grant CREATE"
                )
            if denied:
                log.info("not authorized to create or see %s: left to the worker", denied)
                names = [n for n in names if n not in denied]
            created = [t.name for t in missing if errors.get(t.name) == 0]
            if created:
                log.info("created topics %s", ", ".join(created))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            descs = {d["topic"]: d for d in await client.describe_topics(names)}
            waiting = [
                n
                for n in names
                if n not in descs
                or descs[n]["error_code"] != 0
                or not descs[n]["partitions"]
                or any(p["leader"] < 0 for p in descs[n]["partitions"])
            ]
            if not waiting:
                break
            if loop.time() > deadline:
                raise RuntimeError(f"topics not in broker metadata after {timeout}s: {waiting}")
            await asyncio.sleep(0.1)
        # The worker routes users to partitions by key hash over this count.
        found = len(descs[settings.input_topic]["partitions"])
        if found != settings.partitions:
            raise TopicMismatch(
                f"{settings.input_topic} has {found} partitions but "
                f"STREAMREC_PARTITIONS={settings.partitions}; make them agree"
            )
    finally:
        await client.close()
