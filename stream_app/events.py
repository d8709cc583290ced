"""The input event contract and its validation.

An event is a map with ``user_id`` (str or int), ``item_id`` (str or int),
``event_type`` (view, click, add_to_cart, purchase), ``ts`` (int, ms since
epoch) and optional ``event_id``, ``session_id``, ``category_id`` (the item's
category, str or int: the adjuster proposes items trending in the category the
user is browsing) and ``value``. Ids are normalised to strings.

>>> parse(b'{"user_id": 7, "item_id": "i9", "event_type": "click", "ts": 5}').user_id
'7'
>>> parse(b'{"user_id": 7}')
Traceback (most recent call last):
...
stream_app.events.InvalidEvent: missing_field: item_id
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from models.base import EVENT_TYPES
from stream_app.serializers import DecodeError, decode_value

REQUIRED = ("user_id", "item_id", "event_type", "ts")

# Stable reason codes: DLQ headers and the invalid-events metric use them, and
# ``docs/dlq-reasons.md`` is generated from these descriptions.
REASON_DESCRIPTIONS: dict[str, str] = {
    "too_large": "the value is larger than `STREAMREC_MAX_EVENT_BYTES` (64 KiB)",
    "undecodable": "the value is empty, or neither valid msgpack nor valid JSON",
    "not_a_map": "the value decodes, but not to a map (JSON object)",
    "missing_field": "a required field (`user_id`, `item_id`, `event_type`, `ts`) is absent "
    "or null",
    "wrong_type": "a field has the wrong type, e.g. `ts` not an int or `value` not finite",
    "empty_id": "an id field is an empty string",
    "unknown_event_type": "`event_type` is not `view`, `click`, `add_to_cart` or `purchase`",
    "invalid_ts": "`ts` is negative or beyond 64 bits",
    "too_late": "`ts` is more than `STREAMREC_MAX_LATENESS_MS` (1 h) older than the user's "
    "newest event",
    "ts_in_future": "`ts` is more than `STREAMREC_MAX_FUTURE_MS` (1 day) ahead of the "
    "worker's clock",
    "processing_error": "processing the event raised: a bug, not bad input; the event is kept "
    "in the DLQ so nothing is lost",
    "invalid_control": "a control-topic message that is not a valid erasure request",
}
REASONS = tuple(REASON_DESCRIPTIONS)


class InvalidEvent(ValueError):
    """An event that breaks the contract; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Event(NamedTuple):  # immutable, and cheaper to build than a frozen dataclass
    user_id: str
    item_id: str
    event_type: str
    ts: int
    event_id: str | None = None
    session_id: str | None = None
    value: float | None = None
    category_id: str | None = None


def event_value(
    user: str,
    item: str,
    event_type: str,
    ts: int,
    event_id: str | None = None,
    category: str | None = None,
) -> dict[str, Any]:
    """The map a producer sends for one event (optional fields only when given).

    >>> event_value("u", "i", "click", 5, category="c")
    {'user_id': 'u', 'item_id': 'i', 'event_type': 'click', 'ts': 5, 'category_id': 'c'}
    """
    value: dict[str, Any] = {"user_id": user, "item_id": item, "event_type": event_type, "ts": ts}
    if event_id is not None:
        value["event_id"] = event_id
    if category is not None:
        value["category_id"] = category
    return value


def _id(obj: dict[str, Any], name: str, optional: bool = False) -> str | None:
    v = obj.get(name)
    if type(v) is str and v:  # the usual case, checked first
        return v
    if v is None:
        if optional:
            return None
        raise InvalidEvent("missing_field", name)
    # bool is an int subclass but never a sensible id
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise InvalidEvent("wrong_type", f"{name} must be str or int, got {type(v).__name__}")
    s = str(v)
    if not s:
        raise InvalidEvent("empty_id", name)
    return s


def validate(obj: Any) -> Event:
    """Check a decoded value against the contract; raise :class:`InvalidEvent`."""
    if not isinstance(obj, dict):
        raise InvalidEvent("not_a_map", f"got {type(obj).__name__}")
    for name in REQUIRED:
        if name not in obj or obj[name] is None:
            raise InvalidEvent("missing_field", name)
    event_type = obj["event_type"]
    if not isinstance(event_type, str):
        raise InvalidEvent("wrong_type", f"event_type must be str, got {type(event_type).__name__}")
    if event_type not in EVENT_TYPES:
        raise InvalidEvent("unknown_event_type", repr(event_type)[:64])
    ts = obj["ts"]
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise InvalidEvent("wrong_type", f"ts must be int (ms), got {type(ts).__name__}")
    if ts < 0:
        raise InvalidEvent("invalid_ts", f"negative ts {ts}")
    if ts >= 2**63:
        raise InvalidEvent("invalid_ts", "ts beyond 64 bits")
    value = obj.get("value")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidEvent("wrong_type", f"value must be a number, got {type(value).__name__}")
        try:
            value = float(value)
        except OverflowError:  # an int beyond float range
            value = math.inf
        if not math.isfinite(value):
            raise InvalidEvent("wrong_type", "value must be a finite number")
    return Event(
        user_id=_id(obj, "user_id") or "",
        item_id=_id(obj, "item_id") or "",
        event_type=event_type,
        ts=ts,
        event_id=_id(obj, "event_id", optional=True),
        session_id=_id(obj, "session_id", optional=True),
        value=value,
        category_id=_id(obj, "category_id", optional=True),
    )


def parse(raw: bytes | None, max_bytes: int = 64 * 1024) -> Event:
    """Decode and validate one message value."""
    if raw is None:
        raise InvalidEvent("undecodable", "empty message value")
    if len(raw) > max_bytes:
        raise InvalidEvent("too_large", f"{len(raw)} bytes > limit {max_bytes}")
    try:
        obj = decode_value(raw)
    except DecodeError as exc:
        raise InvalidEvent("undecodable", str(exc)[:200]) from None
    return validate(obj)
