"""An input partition with no committed offset is seeked to its start.

Invariant: after ``perform_seek`` every assigned input partition is positioned at its
committed offset, or at offset 0 (the log start) when the group has none yet.
Upstream: ``Consumer.perform_seek`` (faust/transport/consumer.py:565-581) relies on
aiokafka's ``seek_to_committed`` (aiokafka/consumer/consumer.py:864-903), which leaves a
partition untouched unless ``offset and offset > 0``: where a fetch had already moved
the position past records that a rebalance then dropped undelivered, they were lost.
Offset 0 is where a group with no commit starts anyway (``auto_offset_reset=earliest``).
Also counts seeks for :mod:`.fetch_guard`.
Issue: none known upstream (found with tests/integration/test_chaos.py).
"""

from __future__ import annotations

import logging
from typing import Any, Final

from faust.transport.consumer import Consumer

log = logging.getLogger(__name__)

OWNER: Final = Consumer
NAME: Final = "perform_seek"
upstream: Final = Consumer.perform_seek

#: Instance attribute counting the seeks of a consumer (read by :mod:`.fetch_guard`).
SEEKS: Final = "_streamrec_seeks"


def seeks(consumer: Any) -> int:
    """How many times ``perform_seek`` ran on this consumer."""
    return int(consumer.__dict__.get(SEEKS, 0))


async def perform_seek(self: Consumer) -> None:
    self.__dict__[SEEKS] = seeks(self) + 1
    await upstream(self)
    acks_enabled_for = self.app.topics.acks_enabled_for
    uncommitted = [
        tp
        for tp in self.assignment()
        if acks_enabled_for(tp.topic) and not self._committed_offset.get(tp)
    ]
    for tp in uncommitted:
        log.info("%s has no committed offset: seeking to its start", tp)
        await self.seek(tp, 0)


patched: Final = perform_seek
