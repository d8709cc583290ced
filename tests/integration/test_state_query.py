"""``streamrec state``: any worker answers for any user, from the owner's state."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from stream_app.harness import Stack
from stream_app.routing import partition_for
from tests.conftest import ROOT, wait_for
from tests.integration.kafka_io import read_n, send_all
from tests.integration.test_pipeline import event

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def state(worker_env: dict[str, str], user: str) -> dict:
    url = f"http://127.0.0.1:{worker_env['STREAMREC_WEB_PORT']}"
    out = subprocess.run(
        [sys.executable, "-m", "stream_app", "state", user, "--json", "--url", url],
        cwd=ROOT,
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


async def test_state_is_served_by_the_owner_through_any_worker(stack: Stack) -> None:
    s = stack.settings
    a, b = stack.worker(0).start(), stack.worker(1).start()
    users = [f"用户-{i}" for i in range(12)]  # Unicode ids, URL-quoted on the way
    now = int(time.time() * 1000)
    msgs = [
        (u.encode(), event(u, f"{u}/item{j}", now + j, f"{u}-{j}")) for j in range(3) for u in users
    ]
    await send_all(s.bootstrap, s.input_topic, msgs)
    await read_n(s.bootstrap, s.output_topic, len(msgs), timeout=120)

    def both_serve() -> set[str]:
        # 503 while a rebalance settles (both workers just joined): ask again.
        try:
            served = {state(a.env, u)["served_by"] for u in users}
        except AssertionError:
            return set()
        return served if len(served) == 2 else set()

    wait_for(both_serve, timeout=60, interval=1)
    for u in users:
        doc = state(a.env, u)
        assert doc["partition"] == partition_for(u.encode(), s.partitions)
        assert [e["item_id"] for e in doc["events"]] == [f"{u}/item{j}" for j in range(3)]
        assert doc["last_offset"] >= 0
        assert state(b.env, u) == doc  # the same answer through the other worker
    assert state(a.env, "nobody")["events"] == []
