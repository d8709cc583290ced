"""A static member whose instance id another worker took stops, instead of taking it back.

Invariant: of two workers started with the same group instance id, the one replaced by
the other stops with :class:`~stream_app.kafka.static_member.FencedInstanceIdError`
(the broker's FENCED_INSTANCE_ID) and a message naming the id; they never replace each
other in turn.
Upstream: aiokafka 0.14 heartbeats with Heartbeat v0-v1
(``GroupCoordinator._do_heartbeat``, aiokafka/consumer/group_coordinator.py:797-861),
which cannot name the instance id, so the broker answers the replaced member
UNKNOWN_MEMBER_ID; aiokafka then resets its member id and joins again with the same
instance id (:847-852), which replaces the other worker, whose next heartbeat does the
same: both would own the same partitions in turn, each processing their input. Here a
static member's heartbeats are sent as Heartbeat v3 with the instance id
(:class:`~stream_app.kafka.static_member.StaticHeartbeatRequest`), as the Java client
does, and FENCED_INSTANCE_ID raises: the heartbeat task ends with it, aiokafka hands it
to the consumer and the worker stops. The error is no ``KafkaError``: aiokafka would
retry one. Requests other than heartbeats, and every request of a dynamic member, are
sent as upstream sends them.
Issue: none known upstream (aiokafka has no error class for code 82).
"""

from __future__ import annotations

import logging
from typing import Any, Final

from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.protocol.group import HeartbeatRequest

from stream_app.kafka.static_member import (
    FENCED_INSTANCE_ID,
    FencedInstanceIdError,
    StaticHeartbeatRequest,
)

log = logging.getLogger(__name__)

OWNER: Final = GroupCoordinator
NAME: Final = "_send_req"
upstream: Final = GroupCoordinator._send_req


async def _send_req(self: Any, request: Any) -> Any:
    """Upstream's, with a static member's heartbeat naming its instance id."""
    instance = self._group_instance_id
    if instance is None or not isinstance(request, HeartbeatRequest):
        return await upstream(self, request)
    heartbeat = StaticHeartbeatRequest(self.group_id, self.generation, self.member_id, instance)
    response = await upstream(self, heartbeat)
    if response.error_code == FENCED_INSTANCE_ID:
        msg = (
            f"another worker joined group {self.group_id!r} with this worker's group "
            f"instance id {instance!r}: this worker stops; give every worker its own "
            "STREAMREC_GROUP_INSTANCE_ID"
        )
        log.critical(msg)
        raise FencedInstanceIdError(msg)
    return response


patched: Final = _send_req
