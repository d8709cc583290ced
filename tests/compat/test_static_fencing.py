"""Guard :mod:`stream_app.compat.static_fencing`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stream_app.compat import static_fencing
from stream_app.kafka.static_member import FencedInstanceIdError
from tests.compat.fake_group import Broker, coordinator, heartbeat
from tests.compat.guard_cases import both_versions, invariant


@both_versions(static_fencing)
async def test_a_replaced_static_member_stops_instead_of_rejoining(
    impl: Callable[..., Any], upstream: bool
) -> None:
    c = coordinator(impl, Broker(fenced=True))
    fenced: FencedInstanceIdError | None = None
    try:
        await heartbeat(c)
    except FencedInstanceIdError as exc:
        fenced = exc
    with invariant(upstream):
        # Otherwise it resets its member id and joins with the same instance id,
        # replacing the worker that replaced it, and so on in turn.
        assert fenced is not None and "host:/var/w1" in str(fenced)
        assert not c.rejoin_requested


async def test_a_static_member_heartbeats_with_its_instance_id() -> None:
    broker = Broker()
    c = coordinator(static_fencing.patched, broker)
    assert await heartbeat(c)
    [beat] = broker.sent
    assert (beat.API_VERSION, beat.generation_id, beat.member_id) == (3, 3, "m-1")
    assert beat.group_instance_id == "host:/var/w1"


async def test_a_dynamic_member_heartbeats_as_upstream_has_it() -> None:
    broker = Broker()
    c = coordinator(static_fencing.patched, broker, instance=None)
    assert await heartbeat(c)
    [beat] = broker.sent
    assert beat.API_VERSION == 1
