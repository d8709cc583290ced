"""Per-event input features besides the item: event type and time-gap bucket.

Both are small integer vocabularies with 0 reserved for padding, so they can be
embedded next to the item id.

>>> event_index("purchase"), event_index("teleport")
(5, 1)
>>> gap_buckets([0, 1_000, 4_000, 4_000], use_time=True).tolist()
[1, 3, 4, 2]
>>> gap_buckets([5, 6, 7], use_time=False).tolist()
[1, 1, 1]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.base import EVENT_TYPES

PAD = 0
UNKNOWN = 1  # unknown event type, or "no gap" (first event / data without time)

N_EVENT_INDICES = 2 + len(EVENT_TYPES)  # pad, unknown, then the four types
N_GAP_BUCKETS = 2 + 24  # pad, unknown, then log2 buckets of the gap in seconds

_EVENT_TO_INDEX = {name: 2 + i for i, name in enumerate(EVENT_TYPES)}
PURCHASE = _EVENT_TO_INDEX["purchase"]


def event_index(event_type: str) -> int:
    """Index of an event type; anything unexpected maps to UNKNOWN rather than failing."""
    return _EVENT_TO_INDEX.get(event_type, UNKNOWN)


def gap_buckets(ts_ms: Sequence[int] | np.ndarray, use_time: bool) -> np.ndarray:
    """Bucket each event's gap to the previous event on a log2 scale of seconds.

    The first event (and every event when ``use_time`` is off) gets UNKNOWN. Log
    buckets because what matters is "seconds vs hours vs weeks", not exact gaps.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    out = np.full(len(ts), UNKNOWN, dtype=np.int64)
    if not use_time or len(ts) < 2:
        return out
    gap_s = np.maximum(np.diff(ts), 0) / 1000.0
    # Bucket 2 holds gaps under a second; clipping keeps very old gaps in the last bucket.
    bucket = np.floor(np.log2(1.0 + gap_s)).astype(np.int64)
    out[1:] = 2 + np.minimum(bucket, N_GAP_BUCKETS - 3)
    return out
