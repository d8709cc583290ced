"""Declare streamrec's topics before anything sends to them.

A topic that does not exist at the first send gets auto-created with the
broker's default partition count, not ours, so every topic is created up front.
"""

from __future__ import annotations

import logging

from aiokafka.admin import NewTopic

from stream_app.kafka import clients
from stream_app.settings import Settings

log = logging.getLogger(__name__)


class TopicMismatch(RuntimeError):
    """An existing topic has a different partition count than configured."""


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
    ]


async def ensure_topics(settings: Settings) -> None:
    """Create missing topics; fail clearly if existing ones are partitioned differently."""
    specs = topic_specs(settings)
    client = clients.admin(settings)
    await client.start()
    try:
        existing = set(await client.list_topics())
        missing = [t for t in specs if t.name not in existing]
        if missing:
            await client.create_topics(missing)
            log.info("created topics %s", ", ".join(t.name for t in missing))
        # The worker routes users to partitions by key hash over this count.
        for desc in await client.describe_topics([settings.input_topic]):
            found = len(desc["partitions"])
            if found != settings.partitions:
                raise TopicMismatch(
                    f"{settings.input_topic} has {found} partitions but "
                    f"STREAMREC_PARTITIONS={settings.partitions}; make them agree"
                )
    finally:
        await client.close()
