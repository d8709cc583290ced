"""A group coordinator as the broker sees a static member, for the static-member guards.

:class:`Broker` answers the requests aiokafka's coordinator sends, each built for the
broker's versions as aiokafka's connection builds it, and answers a heartbeat as a
broker does once another worker took the member's instance id: FENCED_INSTANCE_ID
when the request names the id (v3+), UNKNOWN_MEMBER_ID when it cannot (v0-v1).
"""

from __future__ import annotations

from typing import Any

from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.protocol.group import HeartbeatResponse_v1, LeaveGroupResponse_v1

from stream_app.kafka.static_member import (
    FENCED_INSTANCE_ID,
    HeartbeatResponse_v3,
    LeaveGroupResponse_v3,
)

#: api key -> (min, max) version: a Kafka 4 broker's LeaveGroup and Heartbeat.
VERSIONS = {12: (0, 4), 13: (0, 5)}
UNKNOWN_MEMBER_ID = 25


class Broker:
    """The coordinator node: records what it was sent, as wire structs."""

    def __init__(self, fenced: bool = False) -> None:
        self.fenced = fenced
        self.sent: list[Any] = []

    async def send(self, node_id: int, request: Any, group: Any = None) -> Any:
        struct = request.prepare(VERSIONS)
        struct.encode()  # every field has its type
        self.sent.append(struct)
        if struct.API_KEY == 13 and struct.API_VERSION < 3:
            return LeaveGroupResponse_v1(0, 0)
        if struct.API_KEY == 13:
            return LeaveGroupResponse_v3(0, 0, [(m[0], m[1], 0) for m in struct.members])
        if getattr(struct, "group_instance_id", None) is not None:
            return HeartbeatResponse_v3(0, FENCED_INSTANCE_ID if self.fenced else 0)
        return HeartbeatResponse_v1(0, UNKNOWN_MEMBER_ID if self.fenced else 0)


def coordinator(send_req: Any, broker: Broker, instance: str | None = "host:/var/w1") -> Any:
    """aiokafka's coordinator state of a member in generation 3, its ``_send_req`` given."""
    cls = type("Coordinator", (), {"_send_req": send_req})
    c: Any = cls()
    c._client, c.coordinator_id, c.group_id = broker, 1, "streamrec"
    c._group_instance_id, c.generation, c.member_id = instance, 3, "m-1"
    c.rejoin_requested = False

    def reset_generation() -> None:
        c.generation, c.member_id, c.rejoin_requested = -1, "", True

    c.reset_generation = reset_generation
    c.coordinator_dead = lambda: None
    return c


async def heartbeat(c: Any) -> bool:
    """aiokafka's own heartbeat, sent through ``c``'s ``_send_req``."""
    result: bool = await GroupCoordinator._do_heartbeat(c)
    return result
