"""Waiting for a broker (or a worker) that is not there yet.

A worker started before its broker, or a command run while the broker
restarts, retries with bounded exponential backoff (0.5 s, doubling, at most
``STREAMREC_KAFKA_RETRY_MAX_S``), logging one line per failed attempt, for up to
``STREAMREC_KAFKA_WAIT_S`` in all; then it gives up with :class:`Unavailable`,
which the CLI turns into one clear message and exit status 69 (``EX_UNAVAILABLE``).
Faust does not retry its first bootstrap, so the worker waits here before
handing the cluster to Faust; once running, Faust's clients ride out outages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from stream_app.kafka.security import client_security
from stream_app.settings import Settings

log = logging.getLogger(__name__)

EXIT_UNAVAILABLE = 69  # sysexits.h: a service the command needs is unavailable
T = TypeVar("T")


class Unavailable(ConnectionError):
    """What was waited for did not answer within the configured time."""


def delays(total_s: float, max_delay_s: float, first_s: float = 0.5) -> Iterator[float]:
    """Pauses between tries: doubling from ``first_s`` up to ``max_delay_s``, while the
    pauses so far stay within ``total_s`` (the last one cut to fit).

    >>> [round(d, 2) for d in delays(10, 4)]
    [0.5, 1.0, 2.0, 4.0, 2.5]
    >>> list(delays(0, 4))
    []
    """
    spent, delay = 0.0, first_s
    while spent < total_s:
        step = min(delay, max_delay_s, total_s - spent)
        yield step
        spent += step
        delay *= 2


async def retry(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    settings: Settings,
    errors: tuple[type[BaseException], ...],
) -> T:
    """``await attempt()`` until it returns, retrying on ``errors`` with backoff; raise
    :class:`Unavailable` naming ``what`` when the wait is spent."""
    started = time.monotonic()
    pauses = delays(settings.kafka_wait_s, settings.kafka_retry_max_s)
    n = 1
    while True:
        try:
            return await attempt()
        except errors as exc:
            pause = next(pauses, None)
            if pause is None:
                raise Unavailable(
                    f"{what} did not answer within {time.monotonic() - started:.0f} s "
                    f"({n} attempts; STREAMREC_KAFKA_WAIT_S={settings.kafka_wait_s:g}): "
                    f"{describe(exc)}"
                ) from exc
            log.warning(
                "waiting for %s, attempt %d: %s; next try in %.1f s", what, n, describe(exc), pause
            )
            await asyncio.sleep(pause)
            n += 1


def describe(exc: BaseException) -> str:
    """``Type: message``, one line.

    >>> describe(ConnectionError("refused")), describe(ConnectionError())
    ('ConnectionError: refused', 'ConnectionError')
    """
    name = type(exc).__name__
    lines = str(exc).strip().splitlines()
    if not lines:
        return name
    return lines[0] if lines[0].startswith(name) else f"{name}: {lines[0]}"


@contextlib.contextmanager
def quiet_client_log() -> Iterator[None]:
    """aiokafka logs each refused connection as an ERROR; while waiting, the one
    line per attempt above says it instead. Nothing else uses aiokafka then."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def wait_for_kafka(settings: Settings) -> None:
    """Until the cluster of ``settings`` answers a metadata request with its brokers."""
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    async def probe() -> None:
        client = AIOKafkaClient(
            bootstrap_servers=settings.bootstrap,
            request_timeout_ms=5000,
            **client_security(settings),
        )
        try:
            await client.bootstrap()
            if not client.cluster.brokers():
                raise ConnectionError("the cluster lists no brokers yet")
        finally:
            await client.close()

    with quiet_client_log():
        await retry(f"Kafka at {settings.bootstrap}", probe, settings, (KafkaError, OSError))
