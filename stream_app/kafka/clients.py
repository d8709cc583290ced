"""Plain aiokafka clients configured from :class:`~stream_app.settings.Settings`.

Every client streamrec creates outside the Faust worker comes from here, so
connection and security settings are decided in one place (the worker's Faust
clients take the same security from :func:`stream_app.kafka.security.faust_credentials`).
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from stream_app.kafka.security import client_security
from stream_app.settings import Settings


def client_options(settings: Settings) -> dict[str, Any]:
    """Where and how to connect: bootstrap servers plus protocol, SASL and TLS."""
    return {"bootstrap_servers": settings.bootstrap, **client_security(settings)}


def producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    opts: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_request_size": settings.dlq_max_bytes + 64 * 1024,
    }
    opts.update(overrides)
    return AIOKafkaProducer(**client_options(settings), **opts)


def consumer(settings: Settings, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    opts: dict[str, Any] = {"auto_offset_reset": "earliest", "enable_auto_commit": False}
    opts.update(overrides)
    return AIOKafkaConsumer(*topics, **client_options(settings), **opts)


def admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings))
