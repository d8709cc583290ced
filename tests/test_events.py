import json

import msgpack
import pytest

from stream_app.events import REASONS, InvalidEvent, parse
from stream_app.serializers import decode_value, encode_value

OK = {"user_id": 7, "item_id": "i9", "event_type": "click", "ts": 1_700_000_000_000}


def reason_of(raw: bytes | None, **kw: int) -> str:
    with pytest.raises(InvalidEvent) as info:
        parse(raw, **kw)
    assert info.value.reason in REASONS
    return info.value.reason


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_both_encodings_parse_to_the_same_event(fmt: str) -> None:
    raw = encode_value({**OK, "event_id": 5, "value": 3, "category_id": 42}, fmt)  # type: ignore[arg-type]
    ev = parse(raw)
    assert (ev.user_id, ev.item_id, ev.event_type, ev.ts) == ("7", "i9", "click", OK["ts"])
    assert ev.event_id == "5" and ev.value == 3.0 and ev.category_id == "42"
    assert parse(encode_value(OK, fmt)).category_id is None  # type: ignore[arg-type]


def test_json_is_detected_by_its_first_byte() -> None:
    assert decode_value(b'{"a": [1]}') == {"a": [1]}
    assert decode_value(msgpack.packb({"a": [1]})) == {"a": [1]}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "undecodable"),
        (b"\xc1", "undecodable"),
        (b"{not json", "undecodable"),
        (b'{"user_id": "\xff"}', "undecodable"),
        (msgpack.packb([1, 2]), "not_a_map"),
        (msgpack.packb("text"), "not_a_map"),
        (json.dumps({**OK, "item_id": None}).encode(), "missing_field"),
        (msgpack.packb({k: v for k, v in OK.items() if k != "ts"}), "missing_field"),
        (json.dumps({**OK, "ts": "2024-01-01"}).encode(), "wrong_type"),
        (json.dumps({**OK, "ts": 1.5}).encode(), "wrong_type"),
        (json.dumps({**OK, "ts": True}).encode(), "wrong_type"),
        (json.dumps({**OK, "user_id": [1]}).encode(), "wrong_type"),
        (json.dumps({**OK, "event_type": 3}).encode(), "wrong_type"),
        (json.dumps({**OK, "value": "much"}).encode(), "wrong_type"),
        (json.dumps({**OK, "category_id": {"a": 1}}).encode(), "wrong_type"),
        (json.dumps({**OK, "category_id": ""}).encode(), "empty_id"),
        (json.dumps({**OK, "user_id": ""}).encode(), "empty_id"),
        (json.dumps({**OK, "event_type": "like"}).encode(), "unknown_event_type"),
        (json.dumps({**OK, "ts": -1}).encode(), "invalid_ts"),
    ],
)
def test_contract_violations_have_stable_reasons(raw: bytes | None, reason: str) -> None:
    assert reason_of(raw) == reason


def test_size_limit_is_checked_before_decoding() -> None:
    raw = json.dumps({**OK, "pad": "x" * 2000}).encode()
    assert reason_of(raw, max_bytes=1000) == "too_large"
    assert parse(raw, max_bytes=len(raw)).item_id == "i9"
