"""On revoke, the app's handler (wait for streams, then commit) runs before forgetting.

Invariant: the commit made by the revoke handler still sees the acked offsets of the
partitions being revoked; only afterwards are their acked, read and committed offsets
dropped.
Upstream: ``Consumer.on_partitions_revoked`` (faust/transport/consumer.py:642-664) pops
``_gap``, ``_acked``, ``_acked_index``, ``_read_offset`` and ``_committed_offset`` of the
revoked partitions (:656-661) and only then awaits ``_on_partitions_revoked`` (:663), so
every rebalance discarded up to a commit interval of finished work: the next owner
processed it again. aiokafka calls the listener before the assignment changes, so the
commit is made with the current generation. (Upstream's ``transitions_to`` diag flag
is not set by this version.)
Issue: faust-streaming #502 (messages processed twice after rebalancing).
"""

from __future__ import annotations

from typing import Any, Final

from faust.transport.consumer import Consumer

OWNER: Final = Consumer
NAME: Final = "on_partitions_revoked"
upstream: Final = Consumer.on_partitions_revoked


async def on_partitions_revoked(self: Consumer, revoked: Any) -> None:
    """``Consumer.on_partitions_revoked`` with the app's handler (wait, commit) first."""
    span = self.app._start_span_from_rebalancing("on_partitions_revoked")
    with span:
        if self._active_partitions is not None:
            self._active_partitions.difference_update(revoked)
        self._paused_partitions.difference_update(revoked)
        await self._on_partitions_revoked(revoked)  # upstream: after the clearing below
        for tp in revoked:
            self._gap.pop(tp, None)
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            self._read_offset.pop(tp, None)
            self._committed_offset.pop(tp, None)


patched: Final = on_partitions_revoked
