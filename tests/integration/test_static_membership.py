"""Static group membership against the real broker: partitions move at once after an
orderly stop, come back at once to a worker restarted after ``kill -9`` (its state
deleted), and a worker whose instance id another one took stops.

The session timeout is raised to :data:`SESSION_S` so that "at once" and "after the
session timeout" are far apart on a loaded machine: a bound of half of it fails
whenever the group waited for a session to expire.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from stream_app.harness import Stack
from stream_app.kafka import static_member
from stream_app.settings import Settings
from tests.conftest import new_stack, wait_for
from tests.integration.kafka_io import decoded, read_n, send_all
from tests.integration.test_pipeline import event
from tests.integration.test_scale_out import active_partitions

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SESSION_S = 40.0
AT_ONCE_S = SESSION_S / 2


@pytest.fixture
def static_stack(bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    with new_stack(bootstrap, tmp_path, session_timeout_s=SESSION_S) as s:
        yield s


def split_in_two(env: dict[str, str]) -> dict[str, set[int]]:
    held = active_partitions(env)
    return held if len(held) == 2 and all(held.values()) else {}


def batch(first: int, n: int) -> list[tuple[bytes, bytes]]:
    now = int(time.time() * 1000)
    users = [f"u{i % 50}" for i in range(first, first + n)]
    return [
        (u.encode(), event(u, f"i{i}", now + i, f"e{i}"))
        for u, i in zip(users, range(first, first + n), strict=True)
    ]


async def test_an_orderly_stop_hands_the_partitions_over_at_once(static_stack: Stack) -> None:
    s = static_stack.settings
    a, b = static_stack.worker(0).start(), static_stack.worker(1).start()
    wait_for(lambda: split_in_two(a.env), timeout=120, interval=0.5)
    stopping = time.monotonic()
    assert b.stop() == 0, b.log_tail()

    def a_alone() -> dict[str, set[int]]:
        held = active_partitions(a.env)
        return held if [len(p) for p in held.values()] == [s.partitions] else {}

    wait_for(a_alone, timeout=SESSION_S * 2, interval=0.5)
    moved_s = time.monotonic() - stopping
    print(f"a owned every partition {moved_s:.1f} s after b's SIGTERM")
    assert moved_s < AT_ONCE_S, a.log_tail()
    assert re.search(r"LeaveGroup of static member \S+ succeeded", b.log()), b.log_tail()


async def test_a_worker_restarted_after_kill_9_gets_its_partitions_at_once(
    static_stack: Stack,
) -> None:
    s = static_stack.settings
    a, b = static_stack.worker(0).start(), static_stack.worker(1).start()
    before = wait_for(lambda: split_in_two(a.env), timeout=120, interval=0.5)
    await send_all(s.bootstrap, s.input_topic, batch(0, 1000))
    await read_n(s.bootstrap, s.output_topic, 1000, timeout=120)

    b.kill()
    shutil.rmtree(b.env["STREAMREC_DATA_DIR"])  # its state was lost with it
    await send_all(s.bootstrap, s.input_topic, batch(1000, 1000))  # some wait for b
    restarting = time.monotonic()
    b.start()
    b.wait_ready(timeout=SESSION_S * 2)
    back_s = time.monotonic() - restarting
    print(f"b ready {back_s:.1f} s after its restart")
    assert back_s < AT_ONCE_S, b.log_tail()
    assert wait_for(lambda: split_in_two(a.env), timeout=30, interval=0.5) == before

    recs = decoded(await read_n(s.bootstrap, s.output_topic, 2000, timeout=120, settle=3))
    missing = {f"e{i}" for i in range(2000)} - {r["source_event_id"] for r in recs}
    assert not missing, f"{len(missing)} events lost, e.g. {sorted(missing)[:10]}"


class TwinAssignor(AbstractPartitionAssignor):
    """Speaks Faust's protocol name, so the broker lets the twin into the group; it
    takes whatever assignment it is given and never leads."""

    name = "faust"
    version = 4

    @classmethod
    def assign(cls, cluster: Any, members: Any) -> Any:
        raise AssertionError("the twin replaced a member: it is given that one's assignment")

    @classmethod
    def metadata(cls, topics: Any) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(cls.version, sorted(topics), b"")

    @classmethod
    def on_assignment(cls, assignment: Any) -> None:
        pass


async def test_a_worker_whose_instance_id_is_taken_stops(static_stack: Stack) -> None:
    s = static_stack.settings
    a = static_stack.worker(0, group_instance_id="twin").start()
    a.wait_ready()
    own = Settings.from_env(a.env)
    instance = static_member.instance_id(
        "twin", own.app_id, own.data_dir, f"{own.web_host}:{own.web_port}"
    )
    twin = AIOKafkaConsumer(
        bootstrap_servers=s.bootstrap,
        group_id=s.app_id,
        group_instance_id=instance,
        partition_assignment_strategy=[TwinAssignor],
        session_timeout_ms=int(SESSION_S * 1000),
        request_timeout_ms=int(SESSION_S * 4000),
        enable_auto_commit=False,
    )
    await twin.start()
    twin.subscribe(pattern=f"^{re.escape(s.app_id)}")  # every topic of the app: a's set
    try:
        await asyncio.wait_for(twin.getmany(timeout_ms=100), 30)  # joins, replacing a
        wait_for(lambda: not a.running, timeout=60, interval=0.5)
    finally:
        await twin.stop()
    assert a.proc is not None and a.proc.returncode not in (0, None)
    assert f"this worker's group instance id {instance!r}" in a.log(), a.log_tail()
