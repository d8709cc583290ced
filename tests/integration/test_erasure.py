"""Erasure on request: ``streamrec forget`` removes a user from state, from the
changelog after a restore, and (after compaction) from every changelog topic."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from stream_app.app import TABLES
from stream_app.erasure import ForgetRequest
from stream_app.kafka.producer import request_erasure
from stream_app.pseudonym import Pseudonymizer
from stream_app.query import fetch_state
from stream_app.routing import partition_for
from tests.conftest import new_stack, wait_for
from tests.integration.kafka_io import read_all, read_n, send_all
from tests.integration.test_pipeline import event

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SECRET = "erasure-test-secret"
VICTIM = "alice@example.com"


def same_partition_users(user: str, partitions: int, n: int) -> list[str]:
    """Other users whose events land on ``user``'s partition (they roll its segments)."""
    target = partition_for(user.encode(), partitions)
    found = (f"filler{i}" for i in range(10_000))
    return [u for u in found if partition_for(u.encode(), partitions) == target][:n]


def victim_records(records: list, key: bytes) -> list:
    """Changelog records that still hold the victim's data (a tombstone holds none)."""
    return [
        r
        for r in records
        if (r.key == key and r.value is not None)
        or VICTIM.encode() in (r.key or b"") + (r.value or b"")
    ]


async def test_forget_erases_state_survives_a_restore_and_compaction(
    bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(
        bootstrap,
        tmp_path,
        pseudonym_secret=SECRET,
        changelog_segment_ms=300,
        changelog_min_dirty_ratio=0.01,
    )
    s = stack.settings
    key = Pseudonymizer(SECRET)(VICTIM).encode()

    async def changelog_records() -> list:
        """Every record of every table changelog, as the broker holds them now."""
        topics = [f"{s.app_id}-{t}-changelog" for t in TABLES]
        return [r for t in topics for r in await read_all(s.bootstrap, t, s.partitions)]

    try:
        worker = stack.worker(0).start()
        url = f"http://127.0.0.1:{worker.env['STREAMREC_WEB_PORT']}"
        now = int(time.time() * 1000)
        sent = [(VICTIM, f"secret-item-{n}") for n in range(5)]
        sent += [("bob", f"i{n}") for n in range(5)]
        await send_all(
            s.bootstrap,
            s.input_topic,
            [(u.encode(), event(u, i, now + n, f"e{n}")) for n, (u, i) in enumerate(sent)],
        )
        await read_n(s.bootstrap, s.output_topic, len(sent), timeout=120)
        assert len(fetch_state(url, VICTIM)["events"]) == 5
        assert victim_records(await changelog_records(), key), "no victim state in the changelog"

        await request_erasure(s, ForgetRequest.new(VICTIM))
        audit = await read_n(s.bootstrap, s.audit_topic, 1, timeout=60)
        assert len(audit) == 1 and audit[0].key == key
        entry = json.loads(audit[0].value)
        assert entry["user_id"] == key.decode() and entry["events_deleted"] == 5
        assert VICTIM.encode() not in audit[0].value
        assert fetch_state(url, VICTIM)["events"] == []
        assert len(fetch_state(url, "bob")["events"]) == 5

        # Restart with the local state wiped: the tombstone is restored too.
        worker.stop()
        worker = stack.worker(1).start()
        url = f"http://127.0.0.1:{worker.env['STREAMREC_WEB_PORT']}"
        fillers = same_partition_users(VICTIM, s.partitions, 3)
        await send_all(
            s.bootstrap,
            s.input_topic,
            [(u.encode(), event(u, "x", now + 100, f"{u}-0")) for u in fillers],
        )
        await read_n(s.bootstrap, s.output_topic, len(sent) + len(fillers), timeout=120)
        assert fetch_state(url, VICTIM)["events"] == []
        assert len(fetch_state(url, "bob")["events"]) == 5

        # Compaction: keep writing to the victim's partition so segments roll.
        deadline = time.monotonic() + 90
        n = 1
        while True:
            left = victim_records(await changelog_records(), key)
            if not left or time.monotonic() > deadline:
                break
            await send_all(
                s.bootstrap,
                s.input_topic,
                [(u.encode(), event(u, f"x{n}", now + 100 + n, f"{u}-{n}")) for u in fillers],
            )
            n += 1
            await asyncio.sleep(1.0)
        assert not left, f"{len(left)} changelog records still hold the erased user's data"
        wait_for(lambda: fetch_state(url, "bob")["events"], timeout=10)
    finally:
        stack.stop()
