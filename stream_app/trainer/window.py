"""The trainer's bounded window of recent per-user sequences, kept on disk.

Each user's events are kept in time order, at most ``user_events`` of them;
at most ``max_events`` in all (the users idle longest go first), and none older
than ``max_age_ms`` behind the newest event seen (stream time, so a replay ages
the window as the live stream would). Every event gets an arrival number
(``seq``): the most recent arrivals are the holdout, and a checkpoint records up
to which arrival its transition counts go.

A snapshot holds the window and the next input offset of every partition
together, written to a temporary file and renamed over the old one: after a
crash the trainer resumes from a window and offsets that match.
"""

from __future__ import annotations

import bisect
import os
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import msgpack

from models.datasets import UserSequence
from models.training.continual import RoundData
from models.training.data import Example

FORMAT = 1


class Record(NamedTuple):
    ts: int
    seq: int
    item: str
    event_type: str
    event_id: str | None


class Window:
    def __init__(self, max_events: int, user_events: int, max_age_ms: int) -> None:
        self.max_events = max_events
        self.user_events = user_events
        self.max_age_ms = max_age_ms
        self.users: OrderedDict[str, list[Record]] = OrderedDict()
        self.total = 0
        self.seq = 0  # arrival number of the newest event
        self.newest_ts = 0
        self.offsets: dict[int, int] = {}  # partition -> next offset to read

    def newest(self, user: str) -> int | None:
        records = self.users.get(user)
        return records[-1].ts if records else None

    def add(self, user: str, item: str, event_type: str, ts: int, event_id: str | None) -> bool:
        """Add one event; False for a repeated event id of the user."""
        records = self.users.setdefault(user, [])
        if event_id is not None and any(r.event_id == event_id for r in records):
            return False
        self.seq += 1
        bisect.insort(records, Record(ts, self.seq, item, event_type, event_id))
        self.users.move_to_end(user)
        self.total += 1
        if len(records) > self.user_events:
            del records[0]
            self.total -= 1
        self.newest_ts = max(self.newest_ts, ts)
        while self.total > self.max_events and len(self.users) > 1:
            _, dropped = self.users.popitem(last=False)
            self.total -= len(dropped)
        return True

    def forget(self, user: str) -> int:
        """Erase a user's events; how many there were."""
        dropped = self.users.pop(user, [])
        self.total -= len(dropped)
        return len(dropped)

    def expire(self) -> int:
        """Drop events older than the age bound; how many were dropped."""
        cutoff = self.newest_ts - self.max_age_ms
        dropped = 0
        for user in list(self.users):
            records = self.users[user]
            keep = [r for r in records if r.ts >= cutoff]
            dropped += len(records) - len(keep)
            if keep:
                self.users[user] = keep
            else:
                del self.users[user]
        self.total -= dropped
        return dropped

    def round_data(self, holdout_events: int, folded_seq: int) -> RoundData:
        """Training sequences (all but the ``holdout_events`` latest arrivals), holdout
        examples (each latest arrival with its user's earlier events), and the
        transitions of training events that arrived after ``folded_seq``."""
        first_held = self.seq - holdout_events + 1
        train: list[UserSequence] = []
        holdout: list[Example] = []
        pairs: list[tuple[str | None, str]] = []
        for user, records in self.users.items():
            seq = _sequence(user, records)
            cut = sum(r.seq < first_held for r in records)
            if cut:
                train.append(seq.head(cut))
            for i, r in enumerate(records):
                if r.seq >= first_held:
                    holdout.append(Example(seq.head(i), r.item))
                elif r.seq > folded_seq:
                    pairs.append((records[i - 1].item if i else None, r.item))
        return RoundData(train, holdout, pairs)

    # -- persistence ------------------------------------------------------------
    def save(self, path: Path) -> None:
        doc = {
            "format": FORMAT,
            "seq": self.seq,
            "newest_ts": self.newest_ts,
            "offsets": {str(p): o for p, o in self.offsets.items()},
            "users": [[u, [list(r) for r in rs]] for u, rs in self.users.items()],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(msgpack.packb(doc))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def load(self, path: Path) -> bool:
        """Replace the contents with the snapshot at ``path``; False if there is none."""
        if not path.exists():
            return False
        doc = msgpack.unpackb(path.read_bytes(), strict_map_key=False)
        if doc.get("format") != FORMAT:
            raise ValueError(f"{path}: unknown window format {doc.get('format')!r}")
        self.seq, self.newest_ts = int(doc["seq"]), int(doc["newest_ts"])
        self.offsets = {int(p): int(o) for p, o in doc["offsets"].items()}
        self.users = OrderedDict((u, [Record(*r) for r in rs]) for u, rs in doc["users"])
        self.total = sum(len(rs) for rs in self.users.values())
        return True


def _sequence(user: str, records: list[Record]) -> UserSequence:
    return UserSequence(
        user, [r.item for r in records], [r.event_type for r in records], [r.ts for r in records]
    )
