"""Idle users are forgotten by the in-stream sweep, and the changelog forgets them too."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from stream_app.query import fetch_state
from tests.conftest import new_stack, wait_for
from tests.integration.kafka_io import read_n, send_all
from tests.integration.test_pipeline import event

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def test_idle_users_expire_and_stay_expired_after_a_restore(
    bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(
        bootstrap,
        tmp_path,
        user_ttl_s=3,
        sweep_interval_s=1,
        store="memory",  # a restart restores from the changelog alone
    )
    try:
        worker = stack.worker(0).start()
        s = stack.settings
        url = f"http://127.0.0.1:{worker.env['STREAMREC_WEB_PORT']}"
        users = [f"idle{n}" for n in range(8)]
        now = int(time.time() * 1000)
        await send_all(
            s.bootstrap, s.input_topic, [(u.encode(), event(u, "i1", now, f"{u}-1")) for u in users]
        )
        await read_n(s.bootstrap, s.output_topic, len(users), timeout=120)
        assert all(fetch_state(url, u)["events"] for u in users)

        def all_gone() -> bool:
            try:
                return all(not fetch_state(url, u)["events"] for u in users)
            except OSError:
                return False

        wait_for(all_gone, timeout=60, interval=0.5)
        worker.stop()
        # Restart with no sweeps: whatever the state shows now came from the changelog.
        worker = stack.worker(1, sweep_interval_s=3600).start()
        url = f"http://127.0.0.1:{worker.env['STREAMREC_WEB_PORT']}"
        later = int(time.time() * 1000)
        await send_all(s.bootstrap, s.input_topic, [(b"fresh", event("fresh", "i2", later, "f1"))])
        await read_n(s.bootstrap, s.output_topic, len(users) + 1, timeout=120)  # restored, running
        assert fetch_state(url, "fresh")["events"]
        assert all_gone(), "expired users came back from the changelog"
    finally:
        stack.stop()
