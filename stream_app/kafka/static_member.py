"""Static group membership (KIP-345): the worker's instance id and the requests that
name it.

With a group instance id the broker knows a member across restarts: a worker started
again with the same id takes its predecessor's place (and partitions) at once, instead
of waiting for the dead member's session to expire. aiokafka 0.14 sends the id in
JoinGroup and SyncGroup only; its LeaveGroup (v0-v1) and Heartbeat (v0-v1) cannot name
it. The v3 requests here can, built with aiokafka's own protocol types: LeaveGroup v3
removes a static member by member id and instance id, and Heartbeat v3 lets the broker
answer a member whose id another worker took with FENCED_INSTANCE_ID. Used by the
guards :mod:`stream_app.compat.static_leave` and :mod:`stream_app.compat.static_fencing`.

>>> instance_id("auto", "streamrec", Path("/var/w1"), "10.0.0.5:6066", host="h1")
'h1:/var/w1/streamrec@10.0.0.5:6066'
>>> instance_id("", "streamrec", Path("/var/w1"), "10.0.0.5:6066") is None
True
"""

from __future__ import annotations

import socket
from pathlib import Path

from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Int16, Int32, Schema, String

#: The broker's error code for a static member whose instance id another member took.
FENCED_INSTANCE_ID = 82
#: The setting's value that derives the id from the host and the state directory.
AUTO = "auto"


class FencedInstanceIdError(RuntimeError):
    """Another worker joined the group with this worker's group instance id.

    Not a ``KafkaError``: aiokafka retries those, and this one must stop the worker.
    """


def instance_id(
    setting: str, app_id: str, data_dir: Path, web_url: str, host: str | None = None
) -> str | None:
    """The group instance id for ``setting``: ``""`` = none (dynamic membership),
    ``auto`` = host name and the worker's state directory, else the setting itself;
    followed by the worker's web URL (``host:port``).

    Two workers on one host cannot share a state directory (RocksDB locks it), and
    workers on different hosts differ by host name, so ``auto`` is unique per worker
    and stays the same when the worker is started again on the same host, also after
    its state was deleted. The URL is part of the id because a static member that
    joins again is given its predecessor's assignment as it was, and Faust's
    assignment names the worker's URL (its assignor refuses another): a worker whose
    URL changed is a new member."""
    if setting == "":
        return None
    base = f"{host or socket.gethostname()}:{(data_dir / app_id).resolve()}"
    return f"{base if setting == AUTO else setting}@{web_url}"


class LeaveGroupResponse_v3(Response):
    API_KEY = 13
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        (
            "members",
            Array(
                ("member_id", String("utf-8")),
                ("group_instance_id", String("utf-8")),
                ("error_code", Int16),
            ),
        ),
    )


class LeaveGroupRequest_v3(RequestStruct):
    API_KEY = 13
    API_VERSION = 3
    RESPONSE_TYPE = LeaveGroupResponse_v3
    SCHEMA = Schema(
        ("group", String("utf-8")),
        ("members", Array(("member_id", String("utf-8")), ("group_instance_id", String("utf-8")))),
    )


class StaticLeaveGroupRequest(Request[LeaveGroupRequest_v3]):
    """LeaveGroup for one static member (brokers from Kafka 2.4 speak v3)."""

    API_KEY = 13

    def __init__(self, group: str, member_id: str, group_instance_id: str) -> None:
        self._group = group
        self._members = [(member_id, group_instance_id)]

    def build(self, request_struct_class: type[LeaveGroupRequest_v3]) -> LeaveGroupRequest_v3:
        return request_struct_class(self._group, self._members)


class HeartbeatResponse_v3(Response):
    API_KEY = 12
    API_VERSION = 3
    SCHEMA = Schema(("throttle_time_ms", Int32), ("error_code", Int16))


class HeartbeatRequest_v3(RequestStruct):
    API_KEY = 12
    API_VERSION = 3
    RESPONSE_TYPE = HeartbeatResponse_v3
    SCHEMA = Schema(
        ("group", String("utf-8")),
        ("generation_id", Int32),
        ("member_id", String("utf-8")),
        ("group_instance_id", String("utf-8")),
    )


class StaticHeartbeatRequest(Request[HeartbeatRequest_v3]):
    """Heartbeat of a static member, naming its instance id."""

    API_KEY = 12

    def __init__(
        self, group: str, generation_id: int, member_id: str, group_instance_id: str
    ) -> None:
        self._fields = (group, generation_id, member_id, group_instance_id)

    def build(self, request_struct_class: type[HeartbeatRequest_v3]) -> HeartbeatRequest_v3:
        return request_struct_class(*self._fields)
