"""The worker's topics and tables, declared once.

The topics are those of :func:`stream_app.kafka.admin.topic_specs`; the tables
those of :data:`TABLES`, from which :func:`internal_topic_specs` derives Faust's
own topics (the tables' changelogs), so that they can be created before a worker
starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import faust
from aiokafka.admin import NewTopic

from stream_app.kafka.admin import topic_specs
from stream_app.settings import Settings

#: The worker's tables (bytes -> bytes), each keyed as its comment says.
TABLES = (
    "users",  # user id -> UserState
    "items",  # "<partition>:<item>" -> the Markov model's counts (state.markov_store)
    "feedback",  # user id -> the adjuster's open lists awaiting their label
)


def internal_topic_specs(settings: Settings) -> list[NewTopic]:
    """Faust's own topics, named as Faust names them: table changelogs, assignor leader."""
    n, rf = settings.partitions, settings.replication_factor
    compact = {  # what Faust gives a non-windowed table, with a bounded compaction delay
        "cleanup.policy": "compact",
        "segment.ms": str(settings.changelog_segment_ms),
        "min.cleanable.dirty.ratio": str(settings.changelog_min_dirty_ratio),
    }
    specs = [
        NewTopic(f"{settings.app_id}-{t}-changelog", n, rf, topic_configs=compact) for t in TABLES
    ]
    specs.append(NewTopic(f"{settings.app_id}-__assignor-__leader", 1, rf))
    return specs


@dataclass(slots=True)
class Topology:
    """The topics (by name) and tables (by name) of one worker's app."""

    app: faust.App
    settings: Settings
    topics: dict[str, faust.TopicT]
    tables: dict[str, faust.Table]

    @property
    def events(self) -> faust.TopicT:
        return self.topics[self.settings.input_topic]

    @property
    def control(self) -> faust.TopicT:
        return self.topics[self.settings.control_topic]

    @property
    def users(self) -> faust.Table:
        return self.tables["users"]

    @property
    def items(self) -> faust.Table:
        return self.tables["items"]

    @property
    def feedback(self) -> faust.Table:
        return self.tables["feedback"]

    def local_partitions(self) -> list[int]:
        """The input partitions this worker actively owns now."""
        return sorted(
            tp.partition
            for tp in self.app.assignor.assigned_actives()
            if tp.topic == self.settings.input_topic
        )


def declare(app: faust.App, settings: Settings, table_options: dict[str, int]) -> Topology:
    """Declare every topic and table on ``app`` (raw bytes in and out)."""
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    topics = {
        t.name: app.topic(t.name, partitions=t.num_partitions, **raw) for t in topic_specs(settings)
    }
    tables = {
        name: cast(
            faust.Table,
            app.Table(
                name,
                partitions=settings.partitions,
                key_type=bytes,
                value_type=bytes,
                options=table_options,
            ),
        )
        for name in TABLES
    }
    declared = {t.name for t in internal_topic_specs(settings)}
    if {t.changelog_topic_name for t in app.tables.values()} - declared:
        raise RuntimeError("a table's changelog is missing from internal_topic_specs")
    return Topology(app, settings, topics, tables)
