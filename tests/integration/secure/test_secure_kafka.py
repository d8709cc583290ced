"""``streamrec broker --secure`` end to end: the pipeline over SASL_SSL with three
principals, and what the broker refuses (wrong password, no TLS/SASL, ACLs).

Every wait is bounded, so a broker that stops answering fails a test, not hangs it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiokafka import AIOKafkaClient, AIOKafkaConsumer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from stream_app.harness import Stack
from stream_app.kafka.admin import ensure_topics
from stream_app.kafka.consumer import recommendations
from stream_app.kafka.producer import produce
from stream_app.kafka.secure_broker import PRODUCER, READER, WORKER, reader_group_prefix
from tests.conftest import ROOT, stack_env
from tests.integration.kafka_io import decoded, read_n, send_all
from tests.integration.secure.conftest import SecureCluster

pytestmark = [pytest.mark.broker]

BOUND = 60.0  # seconds any single Kafka step may take here


async def bootstrap_as(cluster: SecureCluster, **security: Any) -> None:
    """Connect and fetch metadata; raises if the broker refuses."""
    client = AIOKafkaClient(
        bootstrap_servers=cluster.bootstrap, request_timeout_ms=5000, **security
    )
    try:
        await asyncio.wait_for(client.bootstrap(), BOUND)
    finally:
        await client.close()


async def read_once(cluster: SecureCluster, user: str, group: str | None = None) -> None:
    """Subscribe to the output topic as ``user``, fetch, and commit when in a group."""
    consumer = AIOKafkaConsumer(
        cluster.broker_settings.output_topic,
        bootstrap_servers=cluster.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **cluster.security(user),
    )
    try:  # a refused start must still close the consumer
        await asyncio.wait_for(consumer.start(), BOUND)
        await asyncio.wait_for(consumer.getmany(timeout_ms=1000), BOUND)
        if group is not None:
            await asyncio.wait_for(consumer.commit(), BOUND)
    finally:
        await consumer.stop()


async def wait_ready(stack: Stack, timeout: float = 120.0) -> None:
    worker = stack.workers[-1]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while "Worker ready" not in worker.log():
        if not worker.running:
            pytest.fail(f"the worker exited:\n{worker.log()[-3000:]}")
        if loop.time() > deadline:
            pytest.fail(f"the worker was not ready in {timeout}s:\n{worker.log()[-3000:]}")
        await asyncio.sleep(0.5)


@pytest.mark.slow
async def test_the_pipeline_runs_over_sasl_ssl_with_three_principals(
    secure_cluster: SecureCluster, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    c = secure_cluster
    env = {**stack_env(c.bootstrap), **c.env(WORKER)}  # configured by env vars only
    stack = Stack(env, tmp_path, cwd=ROOT)
    try:
        stack.worker().start()
        await wait_ready(stack)  # it created the topics, as the worker principal
        producer = c.settings(PRODUCER)
        await asyncio.wait_for(ensure_topics(producer), BOUND)  # what `streamrec produce` runs
        n = 200
        assert await asyncio.wait_for(produce(producer, None, 0, n), BOUND) == n

        out = c.broker_settings.output_topic
        recs = decoded(
            await read_n(c.bootstrap, out, n, timeout=120, settle=1, **c.security(READER))
        )
        ids = {r["source_event_id"] for r in recs}
        run = next(iter(ids)).rsplit("-", 1)[0]
        assert len(recs) == n and ids == {f"{run}-{i}" for i in range(n)}

        # `streamrec consume` as the reader: the same output through clients.consumer
        reader = c.settings(READER)
        again = [r async for r in recommendations(reader, n, from_beginning=True, idle_timeout=30)]
        assert {r["source_event_id"] for r in again} == ids
        log = stack.workers[0].log()
        assert "Authenticated as streamrec-worker via SCRAM-SHA-512" in log
    finally:
        stack.stop()


async def test_a_wrong_password_is_refused(
    secure_cluster: SecureCluster, caplog: pytest.LogCaptureFixture
) -> None:
    await bootstrap_as(secure_cluster, **secure_cluster.security(READER))  # the right one works
    caplog.set_level(logging.ERROR, logger="aiokafka")
    with pytest.raises(KafkaConnectionError):
        await bootstrap_as(
            secure_cluster, **secure_cluster.security(READER, sasl_plain_password="wrong")
        )
    assert "Authentication failed" in caplog.text


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
async def test_a_client_without_sasl_ssl_is_refused(
    secure_cluster: SecureCluster, protocol: str
) -> None:
    tls = {k: v for k, v in secure_cluster.security(READER).items() if k == "ssl_context"}
    options = tls if protocol == "SSL" else {}
    with pytest.raises(KafkaConnectionError):
        await bootstrap_as(secure_cluster, security_protocol=protocol, **options)


async def test_acls_keep_each_principal_to_its_role(secure_cluster: SecureCluster) -> None:
    c = secure_cluster
    s = c.broker_settings
    await asyncio.wait_for(ensure_topics(c.settings(WORKER)), BOUND)  # topics exist
    event = [(b"u", b"\x80")]
    as_producer, as_reader = c.security(PRODUCER), c.security(READER)

    # the producer writes events, but cannot read recommendations or write them
    await asyncio.wait_for(send_all(c.bootstrap, s.input_topic, event, **as_producer), BOUND)
    with pytest.raises(TopicAuthorizationFailedError):
        await read_once(c, PRODUCER)
    with pytest.raises(TopicAuthorizationFailedError):
        await asyncio.wait_for(send_all(c.bootstrap, s.output_topic, event, **as_producer), BOUND)

    # the reader reads recommendations (in a group of its prefix), but cannot write events
    await read_once(c, READER, group=f"{reader_group_prefix(s)}-dashboard")
    with pytest.raises(GroupAuthorizationFailedError):
        await read_once(c, READER, group=s.app_id)  # the worker's group is not its own
    with pytest.raises(TopicAuthorizationFailedError):
        await asyncio.wait_for(send_all(c.bootstrap, s.input_topic, event, **as_reader), BOUND)
