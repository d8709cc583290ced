"""The producer is always idempotent, with ``acks=all``.

Invariant: a produce request retried after a timeout (e.g. across a broker restart) is
not written twice: the producer settings ask for idempotence outside transactions too.
Upstream: ``Producer._settings_extra`` (faust/transport/drivers/aiokafka.py:1323-1326)
enables aiokafka's idempotence only when ``app.in_transaction`` (exactly-once). Under
at-least-once a retried batch could be written twice (once seen during a 5 s broker
outage). Idempotence needs nothing more of the broker; streamrec already used acks=-1.
Issue: none known upstream (exactly-once itself: faust-streaming #177).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from faust.transport.drivers.aiokafka import Producer

OWNER: Final = Producer
NAME: Final = "_settings_extra"
upstream: Final = Producer._settings_extra


def settings_extra(self: Any) -> Mapping[str, Any]:
    return {"acks": "all", "enable_idempotence": True}


patched: Final = settings_extra
