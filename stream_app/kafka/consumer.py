"""Read recommendations back from the output topic."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from stream_app.kafka import clients
from stream_app.serializers import decode_value
from stream_app.settings import Settings


async def recommendations(
    settings: Settings,
    limit: int | None = None,
    from_beginning: bool = False,
    idle_timeout: float | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Yield decoded recommendation messages until ``limit`` or ``idle_timeout`` s of quiet."""
    consumer = clients.consumer(
        settings,
        settings.output_topic,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
    seen = 0
    last = time.monotonic()
    try:
        while limit is None or seen < limit:
            batch = await consumer.getmany(timeout_ms=200)
            if not batch:
                if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                    return
                continue
            last = time.monotonic()
            for records in batch.values():
                for r in records:
                    yield decode_value(r.value)
                    seen += 1
                    if limit is not None and seen >= limit:
                        return
    finally:
        await consumer.stop()


def summary(rec: dict[str, Any], width: int = 5) -> str:
    """One human-readable line per recommendation."""
    items = " ".join(f"{i['item_id']}({i['score']:.2f})" for i in rec["items"][:width])
    infl = sorted(rec["influences"], key=lambda x: -x["weight"])[:3]
    because = ", ".join(f"{x['event_type']} {x['item_id']} {x['weight']:.0%}" for x in infl)
    lag = rec["emitted_ts"] - rec["event_ts"]
    return f"user {rec['user_id']:>8} | top: {items} | because: {because} | {lag} ms"
