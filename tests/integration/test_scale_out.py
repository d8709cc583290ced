"""Scale-out by partitions: two workers, one consumer group, the input's
partitions shared; one worker leaves and the other serves its users' state.

(tests/integration/test_chaos.py scenario c adds and removes a third worker
under load and counts events; test_state_query.py routes state queries between
two workers. This test checks the split itself, through Faust's own assignment.)
"""

from __future__ import annotations

import json
import time
import urllib.request

import msgpack
import pytest

from stream_app.harness import Stack
from stream_app.query import fetch_state
from tests.conftest import wait_for
from tests.integration.kafka_io import read_n, send_all
from tests.integration.test_pipeline import event

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def url(worker_env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{worker_env['STREAMREC_WEB_PORT']}"


def active_partitions(worker_env: dict[str, str]) -> dict[str, set[int]]:
    """Faust's assignment, as any worker knows it (``GET /router/``, built in):
    the users table's active partitions (its changelog's), per worker URL."""
    try:
        with urllib.request.urlopen(f"{url(worker_env)}/router/", timeout=10) as resp:
            routes = json.loads(resp.read())
    except OSError:  # not listening yet, or 503 while a rebalance settles
        return {}
    changelog = f"{worker_env['STREAMREC_APP_ID']}-users-changelog"
    return {
        host: set(topics[changelog]) for host, topics in routes.items() if topics.get(changelog)
    }


def send_round(users: list[str], items: range, now: int) -> list[tuple[bytes, bytes]]:
    return [(u.encode(), event(u, f"{u}/i{j}", now + j, f"{u}-{j}")) for j in items for u in users]


async def test_two_workers_share_partitions_and_survive_one_leaving(stack: Stack) -> None:
    s = stack.settings
    assert s.partitions >= 4
    a, b = stack.worker(0).start(), stack.worker(1).start()

    def split_in_two() -> dict[str, set[int]]:
        held = active_partitions(a.env)
        return held if len(held) == 2 else {}

    held = wait_for(split_in_two, timeout=90, interval=1)
    assert set().union(*held.values()) == set(range(s.partitions))
    assert not set.intersection(*held.values())

    users = [f"u{i}" for i in range(40)]
    now = int(time.time() * 1000)
    first = send_round(users, range(3), now)
    await send_all(s.bootstrap, s.input_topic, first)
    out = await read_n(s.bootstrap, s.output_topic, len(first), timeout=120, settle=2)
    ids = [msgpack.unpackb(r.value)["source_event_id"] for r in out]
    assert sorted(ids) == sorted(f"{u}-{j}" for j in range(3) for u in users)  # one each
    by_partition = {r.partition for r in out}
    assert len(by_partition) == s.partitions  # users spread over every partition

    assert b.stop() == 0  # leaves the group; a takes over b's partitions

    def a_alone() -> dict[str, set[int]]:
        held = active_partitions(a.env)
        return held if len(held) == 1 and len(next(iter(held.values()))) == s.partitions else {}

    wait_for(a_alone, timeout=90, interval=1)
    second = send_round(users, range(3, 5), now)
    await send_all(s.bootstrap, s.input_topic, second)
    out = await read_n(s.bootstrap, s.output_topic, len(first) + len(second), timeout=120, settle=2)
    ids = [msgpack.unpackb(r.value)["source_event_id"] for r in out]
    assert sorted(ids) == sorted(f"{u}-{j}" for j in range(5) for u in users)
    for u in users:  # b's users too: restored on a from their changelog
        doc = fetch_state(url(a.env), u)
        assert [e["item_id"] for e in doc["events"]] == [f"{u}/i{j}" for j in range(5)]
        assert doc["served_by"] == next(iter(active_partitions(a.env)))
