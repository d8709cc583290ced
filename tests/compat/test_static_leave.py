"""Guard :mod:`stream_app.compat.static_leave`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka.consumer.group_coordinator import GroupCoordinator

from stream_app.compat import static_leave
from tests.compat.fake_group import Broker, coordinator
from tests.compat.guard_cases import both_versions, invariant


@both_versions(static_leave)
async def test_a_static_member_leaves_the_group_when_it_stops(
    impl: Callable[..., Any], upstream: bool
) -> None:
    broker = Broker()
    c = coordinator(GroupCoordinator._send_req, broker)
    await impl(c)
    assert c.generation == -1 and c.member_id == ""  # upstream's reset is kept
    with invariant(upstream):
        # Otherwise its partitions stay unowned until its session expires.
        assert len(broker.sent) == 1
        leave = broker.sent[0]
        assert (leave.API_KEY, leave.API_VERSION) == (13, 3)
        assert leave.group == "streamrec"
        assert leave.members == [("m-1", "host:/var/w1")]


async def test_a_dynamic_member_leaves_as_upstream_has_it() -> None:
    broker = Broker()
    c = coordinator(GroupCoordinator._send_req, broker, instance=None)
    await static_leave.patched(c)
    [leave] = broker.sent
    assert (leave.API_KEY, leave.API_VERSION, leave.member_id) == (13, 1, "m-1")


async def test_a_member_that_never_joined_sends_nothing() -> None:
    broker = Broker()
    c = coordinator(GroupCoordinator._send_req, broker)
    c.generation = -1
    await static_leave.patched(c)
    assert broker.sent == []
