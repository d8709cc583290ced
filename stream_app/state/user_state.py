"""A user's recent behaviour: the last N events, oldest first, in ts order.

Stored as msgpack bytes in a Faust table keyed by user. Alongside the events it
keeps the last input offset applied, so a replayed message changes nothing.

>>> s = UserState()
>>> s.apply("i1", "click", ts=2_000, event_id="a", offset=0, max_len=3)
True
>>> s.apply("i0", "view", ts=1_000, event_id="b", offset=1, max_len=3)  # late: goes first
True
>>> [r.item_id for r in s.records]
['i0', 'i1']
>>> s.apply("i1", "click", ts=2_000, event_id="a", offset=2, max_len=3)  # repeated event_id
False
>>> s.apply("i5", "click", ts=3_000, event_id=None, offset=1, max_len=3)  # replayed offset
False
>>> UserState.decode(s.encode()) == s
True
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from operator import itemgetter
from typing import NamedTuple

import msgpack

from models.base import EVENT_TYPES, Interaction

_TYPE_CODE = {t: i for i, t in enumerate(EVENT_TYPES)}
# A named tuple's own __new__ is a Python function around this one: building the
# 50 records of a history per event, calling tuple.__new__ directly halves the cost.
_new = tuple.__new__


class Record(NamedTuple):
    item_id: str
    event_type: str
    ts: int
    event_id: str | None = None


_EVENT_ID = itemgetter(3)  # a Record's event_id


@dataclass(slots=True)
class UserState:
    records: list[Record] = field(default_factory=list)
    last_offset: int = -1  # input offset of the last event applied (-1: none)
    partition: int | None = None  # input partition owning the user (for expiry sweeps)
    # The records as Interactions, kept along with them: a state kept decoded hands
    # its history out at every event, and building 50 tuples costs more than copying.
    _history: list[Interaction] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._history = [_new(Interaction, (i, kind, ts)) for i, kind, ts, _ in self.records]

    def apply(
        self,
        item_id: str,
        event_type: str,
        ts: int,
        event_id: str | None,
        offset: int,
        max_len: int,
    ) -> bool:
        """Insert an event in ts order; False (and no change) when already applied.

        An event counts as applied when its offset is not past ``last_offset``
        (a replay after a restart) or its ``event_id`` is among the kept records.
        """
        if offset <= self.last_offset:
            return False
        self.last_offset = offset
        records = self.records
        if event_id is not None and event_id in map(_EVENT_ID, records):
            return False
        rec = Record(item_id, event_type, ts, event_id)
        seen = _new(Interaction, (item_id, event_type, ts))
        history = self._history
        if not records or records[-1].ts <= ts:  # in order, the usual case
            records.append(rec)
            history.append(seen)
        else:  # bisect_right keeps arrival order among equal timestamps
            at = bisect.bisect_right([r.ts for r in records], ts)
            records.insert(at, rec)
            history.insert(at, seen)
        if len(records) > max_len:
            del records[: len(records) - max_len]
            del history[: len(history) - max_len]
        return True

    def position_of(self, event_id: str | None, ts: int, item_id: str) -> int:
        """Index of the record just applied (for finding its predecessor)."""
        for i in range(len(self.records) - 1, -1, -1):
            r = self.records[i]
            if r.ts == ts and r.item_id == item_id and r.event_id == event_id:
                return i
        return -1

    @property
    def newest_ts(self) -> int | None:
        return self.records[-1].ts if self.records else None

    def interactions(self) -> list[Interaction]:
        """The history, oldest first: a copy, which later events do not change."""
        return list(self._history)

    def idle_since(self, cutoff_ms: int) -> bool:
        """True when the newest event is older than ``cutoff_ms`` (or there is none)."""
        newest = self.newest_ts
        return newest is None or newest < cutoff_ms

    def encode(self) -> bytes:
        rows = [[i, _TYPE_CODE[kind], ts, eid] for i, kind, ts, eid in self.records]
        return msgpack.packb([2, self.last_offset, rows, self.partition], use_bin_type=True)

    @classmethod
    def decode(cls, raw: bytes | None) -> UserState:
        if not raw:
            return cls()
        version, last_offset, rows, *rest = msgpack.unpackb(raw, raw=False)
        records = [_new(Record, (i, EVENT_TYPES[t], ts, eid)) for i, t, ts, eid in rows]
        partition = rest[0] if version >= 2 and rest else None
        return cls(records=records, last_offset=last_offset, partition=partition)
