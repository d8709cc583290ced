"""Erasure on request: the ``streamrec.control`` request and the ``streamrec.audit`` entry.

``streamrec forget USER_ID`` publishes a request to the control topic::

    key   = the raw user id (UTF-8), so the request lands on the user's partition
    value = JSON {"action": "forget", "user_id": str, "request_id": str, "requested_ts": int}

A worker forwards each request onto the input topic, to the partition owning the
user, as a control marker (:mod:`stream_app.control`). Processing it in order
with the user's events deletes the user's state (a tombstone in the changelog)
and the adjuster's per-user data, and writes one audit entry::

    key   = the user's state key (pseudonymous when a secret is configured)
    value = JSON {"action": "forget", "user_id": <state key>, "request_id": str,
                  "requested_ts": int, "erased_ts": int, "events_deleted": int,
                  "partition": int, "offset": int}

Ordering with the events is what makes erasure hold under replays: a crash
replays the user's events *and* the request after them.

>>> req = ForgetRequest.new("u1")
>>> ForgetRequest.decode(req.encode()).user_id
'u1'
>>> ForgetRequest.decode(b'{"action": "forget"}')
Traceback (most recent call last):
...
stream_app.erasure.InvalidRequest: user_id must be a non-empty string
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass

FORGET = "forget"


class InvalidRequest(ValueError):
    """A control-topic message that is not a valid erasure request."""


@dataclass(frozen=True, slots=True)
class ForgetRequest:
    user_id: str
    request_id: str
    requested_ts: int
    action: str = FORGET

    @classmethod
    def new(cls, user_id: str) -> ForgetRequest:
        if not user_id:
            raise InvalidRequest("user_id must be a non-empty string")
        return cls(user_id, uuid.uuid4().hex, int(time.time() * 1000))

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> ForgetRequest:
        try:
            doc = json.loads(raw or b"")
        except (ValueError, RecursionError) as exc:
            raise InvalidRequest(f"not JSON: {exc}"[:200]) from None
        if not isinstance(doc, dict) or doc.get("action") != FORGET:
            raise InvalidRequest('expected a JSON object with "action": "forget"')
        user, rid, ts = doc.get("user_id"), doc.get("request_id", ""), doc.get("requested_ts", 0)
        if not isinstance(user, str) or not user:
            raise InvalidRequest("user_id must be a non-empty string")
        if not isinstance(rid, str) or not isinstance(ts, int) or isinstance(ts, bool):
            raise InvalidRequest("request_id must be a string and requested_ts an integer")
        return cls(user, rid, ts)


def audit_entry(
    request: ForgetRequest, state_key: str, events_deleted: int, partition: int, offset: int
) -> bytes:
    """The audit record: the state key only (pseudonymous with a secret), never the raw id."""
    doc = {
        "action": FORGET,
        "user_id": state_key,
        "request_id": request.request_id,
        "requested_ts": request.requested_ts,
        "erased_ts": int(time.time() * 1000),
        "events_deleted": events_deleted,
        "partition": partition,
        "offset": offset,
    }
    return json.dumps(doc, separators=(",", ":")).encode()
