"""A paused partition forgets that back-pressure had buffered it.

Invariant: a paused partition is neither active nor buffered, so nothing re-activates
it before it is resumed.
Upstream: ``Consumer.pause_partitions`` (faust/transport/consumer.py:622-626) removes the
partitions from the active set only. A partition that ``on_buffer_full`` (:547) had
moved to ``_buffered_partitions`` stays there: the next ``on_buffer_drop`` (:554)
re-activates it in the middle of a table recovery, and the fetch filter
(:758-766, :mod:`.fetch_guard`) still treats it as deliverable.
Issue: none known upstream (related: faust-streaming #74, back-pressure in recovery).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from faust.transport.consumer import Consumer, ensure_TPset

OWNER: Final = Consumer
NAME: Final = "pause_partitions"
upstream: Final = Consumer.pause_partitions


def pause_partitions(self: Consumer, tps: Iterable[Any]) -> None:
    tpset = ensure_TPset(tps)
    upstream(self, tpset)
    self._buffered_partitions.difference_update(tpset)


patched: Final = pause_partitions
