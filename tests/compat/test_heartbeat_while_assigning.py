"""Guard :mod:`stream_app.compat.heartbeat_while_assigning`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faust.transport.drivers.aiokafka import ConsumerRebalanceListener

from stream_app.compat import heartbeat_while_assigning
from tests.compat.guard_cases import INPUT, both_versions, invariant


class Coordinator:
    """aiokafka's group coordinator, as far as the listener touches it."""

    generation = 7

    def __init__(self) -> None:
        self.heartbeating = False

    def _start_heartbeat_task(self) -> None:
        self.heartbeating = True


class Thread:
    """Faust's consumer thread: its aiokafka consumer, its app, the assignment handler."""

    def __init__(self) -> None:
        self.coordinator = Coordinator()
        self.app = type("App", (), {"consumer_generation_id": 0})()
        self.heartbeating_during_handler: bool | None = None

    def _ensure_consumer(self) -> Any:
        return type("Consumer", (), {"_coordinator": self.coordinator})()

    async def on_partitions_assigned(self, assigned: Any, generation: int) -> None:
        # The handler: tables open their partitions and restore them (seconds).
        self.heartbeating_during_handler = self.coordinator.heartbeating


@both_versions(heartbeat_while_assigning)
async def test_heartbeats_run_while_the_assignment_is_handled(
    impl: Callable[..., Any], upstream: bool
) -> None:
    thread = Thread()
    await impl(ConsumerRebalanceListener(thread), [INPUT])  # type: ignore[arg-type]
    assert thread.app.consumer_generation_id == 7  # upstream's work is still done
    with invariant(upstream):
        # Otherwise a handler longer than the session timeout loses the membership.
        assert thread.heartbeating_during_handler
