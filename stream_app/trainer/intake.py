"""Input messages into the trainer's window, by the workers' rules.

The same decoding and validation as a worker (:func:`stream_app.events.parse`,
both encodings, the lateness and clock-skew bounds), the same pseudonymous user
ids, and the same routing: a message found outside its user's partition is
skipped, because a worker forwards it and the forwarded copy arrives too.
Invalid messages are counted and skipped; writing dead letters stays the
workers' job, so the DLQ holds each bad message once. Erasure requests remove
the user from the window; idle-user sweep markers are ignored (the window has
its own age bound).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from stream_app.control import CONTROL_HEADER, FORGET
from stream_app.erasure import ForgetRequest, InvalidRequest
from stream_app.events import InvalidEvent, parse
from stream_app.outgoing import Header
from stream_app.pseudonym import Pseudonymizer
from stream_app.routing import REROUTED_HEADER, partition_for
from stream_app.settings import Settings
from stream_app.trainer import telemetry as metrics
from stream_app.trainer.window import Window

log = logging.getLogger(__name__)


def _header(headers: Sequence[Header], name: str) -> bytes | None:
    for k, v in headers:
        if k == name:
            return v
    return None


class Intake:
    def __init__(self, settings: Settings, window: Window) -> None:
        self.settings = settings
        self.window = window
        self.pseudonymize = Pseudonymizer.from_settings(settings)

    def _user(self, raw_id: str) -> str:
        return self.pseudonymize(raw_id) if self.pseudonymize else raw_id

    def take(self, value: bytes | None, partition: int, headers: Sequence[Header]) -> bool:
        """Add one message's event to the window; False when it added nothing."""
        s = self.settings
        marker = _header(headers, CONTROL_HEADER)
        if marker is not None:
            if marker == FORGET:
                self._forget(value)
            return False
        try:
            event = parse(value, s.max_event_bytes)
            owner = partition_for(event.user_id.encode(), s.partitions)
            if partition != owner and _header(headers, REROUTED_HEADER) is None:
                return False  # the worker forwards it; its copy is the one to take
            user = self._user(event.user_id)
            self._check_time(event.ts, self.window.newest(user))
        except InvalidEvent as exc:
            metrics.INVALID.labels(exc.reason).inc()
            return False
        added = self.window.add(user, event.item_id, event.event_type, event.ts, event.event_id)
        if added:
            metrics.EVENTS.inc()
        return added

    def _check_time(self, ts: int, newest: int | None) -> None:
        s = self.settings
        now = int(time.time() * 1000)
        if ts > now + s.max_future_ms:
            raise InvalidEvent("ts_in_future", f"ts {ts} is {ts - now} ms ahead of the clock")
        if newest is not None and ts < newest - s.max_lateness_ms:
            raise InvalidEvent("too_late", f"ts {ts} is {newest - ts} ms older than the user's")

    def _forget(self, value: bytes | None) -> None:
        try:
            request = ForgetRequest.decode(value)
        except InvalidRequest:
            return  # the owning worker dead-letters it
        dropped = self.window.forget(self._user(request.user_id))
        log.info("erasure %s: %d events left the window", request.request_id, dropped)
