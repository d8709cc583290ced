"""A worker that dies like ``kill -9`` (``os._exit``, no cleanup) in the middle of a batch.

``CRASH_AT_BATCH`` (1-based) picks the batch; ``CRASH_PHASE`` where in it:

* ``counts``: the Markov counts' changelog records delivered and written, the
  users' and feedback records and the outputs not yet sent;
* ``sent``: those sent too, given half a second to be delivered, nothing acked.

Run as the worker command (``Stack(..., argv=[python, this file])``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from stream_app import batch_loop
from stream_app.cli import main

CRASH_EXIT = 86
AT = int(os.environ.get("CRASH_AT_BATCH", "3"))
PHASE = os.environ.get("CRASH_PHASE", "counts")

_start = batch_loop.BatchLoop.start
_deliver = batch_loop.BatchLoop.deliver
_batches = 0


async def start(self: batch_loop.BatchLoop, events: Any) -> None:
    global _batches
    _batches += 1
    await _start(self, events)


async def deliver(self: batch_loop.BatchLoop, stores: Any, outputs: Any, done: Any) -> None:
    last_phase = stores is self.rest
    if _batches == AT and last_phase:
        if PHASE == "sent":
            records = [r for store in stores for r in store.records()]
            records += [(m.topic, None, m.key, m.value, m.headers) for m in outputs]
            await self.sender.send(records)
            await asyncio.sleep(0.5)
        print(f"crash_mid_batch: dying in batch {AT} ({PHASE})", flush=True)
        os._exit(CRASH_EXIT)
    await _deliver(self, stores, outputs, done)


batch_loop.BatchLoop.start = start  # type: ignore[method-assign]
batch_loop.BatchLoop.deliver = deliver  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker"]
    raise SystemExit(main())
