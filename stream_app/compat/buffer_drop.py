"""Back-pressure never re-activates a paused partition.

Invariant: ``on_buffer_drop`` makes a buffered partition active again only if it is not
paused.
Upstream: ``Consumer.on_buffer_drop`` (faust/transport/consumer.py:554-559) puts every
buffered partition back into the active set. It fires from the agent's next
``queue.get()`` on an empty queue, which a rebalance's queue clear makes likely, so an
input partition paused for table recovery could be fetched again and its events applied
to half-restored tables. (``on_buffer_full``, :547, buffers a partition even when it is
paused.)
Issue: none known upstream (related: faust-streaming #74, back-pressure in recovery).
"""

from __future__ import annotations

from typing import Any, Final

from faust.transport.consumer import Consumer

OWNER: Final = Consumer
NAME: Final = "on_buffer_drop"
upstream: Final = Consumer.on_buffer_drop


def on_buffer_drop(self: Consumer, tp: Any) -> None:
    buffered = self._buffered_partitions
    if tp in buffered:
        buffered.discard(tp)
        if tp not in self._paused_partitions:
            self._get_active_partitions().add(tp)


patched: Final = on_buffer_drop
