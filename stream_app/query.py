"""``streamrec state``: ask the worker group for one user's state."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from stream_app.kafka.wait import retry
from stream_app.settings import Settings


class NotAnswering(ConnectionError):
    """Nothing listens at the worker's URL (yet)."""


def fetch_state(
    base_url: str, user_id: str, timeout: float = 10.0, wait: float = 60.0
) -> dict[str, Any]:
    """The user's state from the worker owning it. While the owner's partition is
    being rebalanced or restored (HTTP 503) ask again, for up to ``wait`` seconds."""
    url = f"{base_url.rstrip('/')}/state/{urllib.parse.quote(user_id, safe='')}/"
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


async def fetch_state_waiting(base_url: str, user_id: str, settings: Settings) -> dict[str, Any]:
    """:func:`fetch_state`, waiting for a worker that is not listening yet as the CLI
    waits for Kafka (``STREAMREC_KAFKA_WAIT_S``); an HTTP error answer is final."""

    async def attempt() -> dict[str, Any]:
        try:
            return await asyncio.to_thread(fetch_state, base_url, user_id)
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, ConnectionError) as exc:
            raise NotAnswering(str(getattr(exc, "reason", exc))) from exc

    return await retry(f"a worker at {base_url}", attempt, settings, (NotAnswering,))


def render(doc: dict[str, Any]) -> str:
    lines = [
        f"user {doc['user_id']}  (partition {doc['partition']}, served by {doc.get('served_by')})",
        f"last input offset applied: {doc['last_offset']}",
        f"{len(doc['events'])} recent events, oldest first:",
    ]
    for e in doc["events"]:
        when = datetime.fromtimestamp(e["ts"] / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        lines.append(f"  {when}  {e['event_type']:<12} {e['item_id']}  ({e['event_id']})")
    return "\n".join(lines)
