"""Property-based fuzzing of decoding and validation: no input escapes as an
exception other than InvalidEvent, and valid input always parses."""

from __future__ import annotations

import contextlib
import json
import math

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.base import EVENT_TYPES
from stream_app.events import REASONS, InvalidEvent, parse

FIELDS = ("user_id", "item_id", "event_type", "ts", "event_id", "session_id", "value")
ids = st.one_of(
    st.text(min_size=1, max_size=50), st.integers(min_value=-(2**63), max_value=2**64 - 1)
)
any_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary()),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
valid_events = st.fixed_dictionaries(
    {
        "user_id": ids,
        "item_id": ids,
        "event_type": st.sampled_from(EVENT_TYPES),
        "ts": st.integers(min_value=0, max_value=2**63 - 1),
    },
    optional={
        "event_id": ids,
        "session_id": ids,
        "value": st.floats(allow_nan=False, allow_infinity=False),
    },
)


def outcome(raw: bytes) -> str:
    """'ok' or the DLQ reason; any other exception fails the test."""
    try:
        parse(raw, max_bytes=64 * 1024)
    except InvalidEvent as exc:
        assert exc.reason in REASONS
        return exc.reason
    return "ok"


def encodings(obj: object) -> list[bytes]:
    out = []
    # not every value is representable in msgpack (e.g. ints beyond 64 bits)
    with contextlib.suppress(OverflowError, TypeError, ValueError):
        out.append(msgpack.packb(obj, use_bin_type=True))
    try:
        text = json.dumps(obj)
        if text.startswith("{"):
            out.append(text.encode())
    except (TypeError, ValueError):
        pass
    return out


fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(st.binary(max_size=2000))
def test_random_bytes_never_escape(raw: bytes) -> None:
    outcome(raw)


@fast
@given(st.binary(min_size=1, max_size=300), st.integers(min_value=0, max_value=299))
def test_truncated_msgpack_and_json_never_escape(tail: bytes, cut: int) -> None:
    packed = msgpack.packb({"user_id": "u", "item_id": tail, "event_type": "click", "ts": 1})
    outcome(packed[:cut])
    text = json.dumps({"user_id": "u", "item_id": tail.hex(), "event_type": "view", "ts": 1})
    outcome(text.encode()[:cut])


@fast
@given(valid_events)
def test_every_valid_event_parses_in_both_encodings(obj: dict) -> None:
    for raw in encodings(obj):
        ev = parse(raw, max_bytes=10**6)
        assert ev.user_id == str(obj["user_id"]) and ev.item_id == str(obj["item_id"])
        assert ev.ts == obj["ts"] and ev.event_type == obj["event_type"]


@fast
@given(valid_events, st.sampled_from(FIELDS), any_value)
def test_any_value_in_any_field_maps_to_an_event_or_one_reason(
    obj: dict, field: str, value: object
) -> None:
    obj = {**obj, field: value}
    for raw in encodings(obj):
        outcome(raw)


@fast
@given(valid_events, st.sampled_from(["user_id", "item_id", "event_type", "ts"]), any_value)
def test_wrong_types_are_named(obj: dict, field: str, value: object) -> None:
    ok_types = {"user_id": (str, int), "item_id": (str, int), "event_type": (str,), "ts": (int,)}
    if isinstance(value, ok_types[field]) and not isinstance(value, bool):
        return
    obj = {**obj, field: value}
    for raw in encodings(obj):
        assert outcome(raw) in ("wrong_type", "missing_field", "undecodable")


def test_nesting_nan_and_huge_numbers() -> None:
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert outcome(deep) in ("undecodable", "too_large")
    assert outcome(b'{"a":' * 5000 + b"1" + b"}" * 5000) == "undecodable"
    assert outcome(b"\x91" * 5000 + b"\x01") in ("undecodable", "not_a_map")
    base = {"user_id": "u", "item_id": "i", "event_type": "click", "ts": 5}
    assert outcome(json.dumps({**base, "ts": math.nan}).encode()) == "wrong_type"
    assert outcome(json.dumps({**base, "value": math.inf}).encode()) == "wrong_type"
    assert outcome(json.dumps({**base, "ts": 10**30}).encode()) == "invalid_ts"
    huge_id = b'{"user_id": ' + b"9" * 5000 + b', "item_id": 1, "event_type": "view", "ts": 1}'
    assert outcome(huge_id) == "undecodable"  # beyond Python's int parsing limit
    assert (
        outcome(b'{"user_id": "a", "user_id": "b", "item_id": 1, "event_type": "view", "ts": 1}')
        == "ok"
    )


def test_unicode_and_control_characters_in_ids_are_accepted() -> None:
    for uid in ("用户-1", "ユーザー", "emoji-\U0001f600", "tab\tnew\nline", "\x00nul"):
        raw = msgpack.packb({"user_id": uid, "item_id": uid, "event_type": "click", "ts": 1})
        assert parse(raw).user_id == uid
