"""A session-scoped secured broker (``streamrec broker --secure``) on free ports,
separate from the plain ``bootstrap`` one, and the three principals' settings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stream_app.harness import env_of, local_broker_settings
from stream_app.kafka.broker import EmbeddedBroker
from stream_app.kafka.secure_broker import client_env
from stream_app.kafka.security import client_security
from stream_app.settings import Settings


@dataclass
class SecureCluster:
    """The broker's settings (its ACLs name these topics) and, per principal, how
    a streamrec process or a plain client connects as it."""

    broker_settings: Settings
    bootstrap: str
    secrets_dir: Path

    def env(self, user: str) -> dict[str, str]:
        """``STREAMREC_*`` variables for a worker/producer/reader process."""
        s = self.broker_settings
        topics = ("app_id", "input_topic", "output_topic", "dlq_topic", "partitions")
        return {**env_of(s, *topics), **client_env(s, user)}

    def settings(self, user: str) -> Settings:
        return Settings.from_env(self.env(user))

    def security(self, user: str, **overrides: Any) -> dict[str, Any]:
        """aiokafka security options for ``user`` (e.g. a wrong password as override)."""
        return {**client_security(self.settings(user)), **overrides}


@pytest.fixture(scope="session")
def secure_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    tag = uuid.uuid4().hex[:8]
    settings = local_broker_settings(
        broker_secrets_dir=tmp_path_factory.mktemp("broker-secrets"),
        app_id=f"secure-{tag}",
        input_topic=f"s{tag}.events",
        output_topic=f"s{tag}.recommendations",
        dlq_topic=f"s{tag}.events.dlq",
        partitions=2,
    )
    with EmbeddedBroker(settings, secure=True) as broker:
        yield SecureCluster(settings, broker.bootstrap, broker.secrets_dir)
