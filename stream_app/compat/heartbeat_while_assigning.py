"""The group session is kept alive while the worker handles a new assignment.

Invariant: a member whose assignment handler runs longer than the session timeout (a
table restore: bulk restore runs there, about 7-11 s for 100,000 users on the 2-core VM)
is not expelled from the group for it.
Upstream: aiokafka 0.14 stops the heartbeat task before it rejoins
(``GroupCoordinator.ensure_active_group``, aiokafka/consumer/group_coordinator.py:720) and
starts it only after the join is complete (:738), which includes awaiting the listener's
``on_partitions_assigned`` (:504), i.e. Faust's ``ConsumerRebalanceListener``
(faust/transport/drivers/aiokafka.py:213-218) and with it every table's rebalance
handler. A handler longer than ``STREAMREC_SESSION_TIMEOUT_S`` lost the session: the
first heartbeat after it failed ("local member_id was not recognized"), the partitions
were revoked and assigned again, measured in ``scripts/bench_recovery.py`` at 100,000
users. Here the heartbeat task is started as soon as the assignment is known, as the
Java client's heartbeat thread does; aiokafka's own start after the join then finds it
running. The member is in the new generation already (SyncGroup is done), so these
heartbeats are valid; a rebalance they learn of is joined after the handler, as before.
Issue: none known upstream (the comment at :716-719 keeps heartbeats alive during the
revoke callback for the same reason).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from faust.transport.drivers.aiokafka import ConsumerRebalanceListener

OWNER: Final = ConsumerRebalanceListener
NAME: Final = "on_partitions_assigned"
upstream: Final = ConsumerRebalanceListener.on_partitions_assigned


async def on_partitions_assigned(self: ConsumerRebalanceListener, assigned: Iterable[Any]) -> None:
    """Upstream's, with the group heartbeats running while the handlers do."""
    self._thread._ensure_consumer()._coordinator._start_heartbeat_task()
    await upstream(self, assigned)


patched: Final = on_partitions_assigned
