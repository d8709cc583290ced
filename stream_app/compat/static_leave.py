"""A static member leaves the group when it stops in order.

Invariant: a worker with a group instance id (``STREAMREC_GROUP_INSTANCE_ID``) that
stops in order (SIGTERM, scale-in) leaves the group at once, so another worker takes
its partitions in the rebalance that follows instead of after the session timeout.
Upstream: aiokafka 0.14 skips LeaveGroup for a static member
(``GroupCoordinator._maybe_leave_group``, aiokafka/consumer/group_coordinator.py:374-388:
"do not send this leave request if we are running in static partition assignment
mode"), and its LeaveGroup (v0-v1) cannot name one. Here a static member sends
LeaveGroup v3 (:class:`stream_app.kafka.static_member.StaticLeaveGroupRequest`) with
its member id and instance id; a dynamic member's path is upstream's. Like upstream's,
it is one attempt: a failed request is logged, and the broker then drops the member
when its session expires, as before. A worker killed with ``kill -9`` sends nothing;
one started again with the same instance id takes the dead one's place at once.
Issue: none known upstream; the Java client likewise keeps static members in the group
on close (KIP-345), which suits rolling restarts, not scale-in.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import aiokafka.errors as Errors
from aiokafka.consumer.group_coordinator import GroupCoordinator

from stream_app.kafka.static_member import FENCED_INSTANCE_ID, StaticLeaveGroupRequest

log = logging.getLogger(__name__)

OWNER: Final = GroupCoordinator
NAME: Final = "_maybe_leave_group"
upstream: Final = GroupCoordinator._maybe_leave_group


async def _maybe_leave_group(self: Any) -> None:
    """Upstream's for a dynamic member; LeaveGroup v3 for a static one."""
    instance = self._group_instance_id
    if instance is None or self.generation <= 0:
        await upstream(self)
        return
    request = StaticLeaveGroupRequest(self.group_id, self.member_id, instance)
    try:
        response = await self._send_req(request)
    except (Errors.KafkaError, NotImplementedError) as err:
        log.error("LeaveGroup of static member %s failed: %s", instance, err)
    else:
        codes = [response.error_code] + [m[2] for m in response.members]
        errors = [_name(c) for c in codes if c != 0]
        if errors:
            log.error("LeaveGroup of static member %s refused: %s", instance, errors)
        else:
            log.info("LeaveGroup of static member %s succeeded", instance)
    self.reset_generation()


def _name(code: int) -> str:
    """aiokafka 0.14 knows no error class for FENCED_INSTANCE_ID."""
    return "FENCED_INSTANCE_ID" if code == FENCED_INSTANCE_ID else Errors.for_code(code).__name__


patched: Final = _maybe_leave_group
