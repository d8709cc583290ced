"""Read every dataset format streamrec uses; torch-free, one opener for plain or gzip.

Formats (``FORMATS``; ``guess_format`` picks one from the path):

* ``sequences``: one user per line, ``user tok tok ...`` in time order. A token
  is an item id, or ``item|event_type|ts_ms`` so that data with real event types
  and timestamps uses the same files; a line's types and times count only when
  every token carries them. The trainer reads whole lines (:class:`UserSequence`);
  the producer and the replay interleave users the way real traffic is, each
  user's events kept in order, untyped events becoming purchases;
* ``canonical``: CSV with header ``user_id,item_id,event_type,ts`` (ts in ms) and
  an optional ``category_id`` column;
* ``taobao``: UserBehavior CSV ``user,item,category,behavior,ts`` (pv -> click,
  fav and cart -> add_to_cart, buy -> purchase; ts in seconds);
* ``rees46``: the Open CDP CSV (view -> click, cart -> add_to_cart, purchase).

A log event is ``(user, item, event_type, ts_ms, category)``, ``category`` None
where the log has none. A name ending in ``.gz`` is read through gzip.

>>> evs = list(interleave([("u1", ["a", "b"]), ("u2", ["c"])], active=2, seed=1))
>>> sorted(evs) == [("u1", "a"), ("u1", "b"), ("u2", "c")]
True
>>> [i for u, i in evs if u == "u1"]
['a', 'b']
>>> seq = parse_line("u2 7|click|10 8|purchase|20")
>>> seq.items, seq.events, seq.ts
(['7', '8'], ['click', 'purchase'], [10, 20])
"""

from __future__ import annotations

import csv
import gzip
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, TypeVar

from models.base import Interaction

Event = tuple[str, str, str, int, str | None]
# An event of a stream that may carry no time of its own (plain sequences, generated data).
StreamEvent = tuple[str, str, str, int | None, str | None]
FORMATS = ("canonical", "taobao", "rees46", "sequences")
DEFAULT_EVENT = "purchase"  # benchmark reviews stand in for purchases
TAOBAO_TYPES = {"pv": "click", "fav": "add_to_cart", "cart": "add_to_cart", "buy": "purchase"}
REES46_TYPES = {"view": "click", "cart": "add_to_cart", "purchase": "purchase"}

T = TypeVar("T")


def open_text(path: str | Path) -> TextIO:
    """A dataset file as text: gunzipped when its name ends in ``.gz``."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


@dataclass(slots=True)
class UserSequence:
    """One user's events, oldest first; ``events``/``ts`` are None when the data has none."""

    user: str
    items: list[str]
    events: list[str] | None = None
    ts: list[int] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def head(self, n: int) -> UserSequence:
        """The first ``n`` events (negative ``n`` drops from the end, like a slice)."""
        return UserSequence(
            self.user,
            self.items[:n],
            None if self.events is None else self.events[:n],
            None if self.ts is None else self.ts[:n],
        )

    def interactions(self) -> list[Interaction]:
        """As pipeline events; missing types become purchases and missing times a 1 s tick."""
        events = self.events or [DEFAULT_EVENT] * len(self.items)
        ts = self.ts or [1000 * i for i in range(len(self.items))]
        return [Interaction(i, e, t) for i, e, t in zip(self.items, events, ts, strict=True)]


def parse_token(token: str) -> tuple[str, str | None, int | None]:
    """``item|event_type|ts_ms`` into its parts; any other token is a bare item id."""
    parts = token.split("|")
    if len(parts) == 3:
        return parts[0], parts[1], int(parts[2])
    return token, None, None


def parse_line(line: str) -> UserSequence | None:
    """One ``user tok tok ...`` line; None for a blank one (a lone user has no items)."""
    fields = line.split()
    if not fields:
        return None
    parsed = [parse_token(t) for t in fields[1:]]
    items = [p[0] for p in parsed]
    events = [p[1] for p in parsed]
    ts = [p[2] for p in parsed]
    if parsed and all(e is not None for e in events):
        return UserSequence(fields[0], items, events, ts)  # type: ignore[arg-type]
    return UserSequence(fields[0], items)


def user_sequences(path: str | Path) -> Iterator[UserSequence]:
    """Every non-blank line of a sequences file, in file order, read lazily."""
    with open_text(path) as f:
        for line in f:
            seq = parse_line(line)
            if seq is not None:
                yield seq


def load_sequences(path: str | Path) -> list[UserSequence]:
    return list(user_sequences(path))


def read_sequences(path: str | Path) -> Iterator[tuple[str, list[str]]]:
    """(user, item ids) of the users that have items, in file order."""
    return ((s.user, s.items) for s in user_sequences(path) if s.items)


def interleave(
    users: Iterable[tuple[str, Iterable[T]]], active: int = 500, seed: int = 0
) -> Iterator[tuple[str, T]]:
    """Yield (user, item) with ``active`` users in flight at once, picked at random."""
    rng = random.Random(seed)
    source = iter(users)
    pool: list[tuple[str, Iterator[T]]] = []
    for user, items in source:
        pool.append((user, iter(items)))
        if len(pool) >= active:
            break
    while pool:
        i = rng.randrange(len(pool))
        user, its = pool[i]
        item = next(its, None)
        if item is None:
            nxt = next(source, None)
            if nxt is None:
                pool[i] = pool[-1]
                pool.pop()
            else:
                pool[i] = (nxt[0], iter(nxt[1]))
            continue
        yield user, item


def sequence_events(sequences: Iterable[UserSequence], seed: int = 0) -> Iterator[StreamEvent]:
    """The users' events interleaved (:func:`interleave`), each user's in order; an untyped
    event is a purchase and an untimed one has ts None. Users without items are skipped."""

    def steps(s: UserSequence) -> Iterator[tuple[str, str, int | None]]:
        events = s.events or [DEFAULT_EVENT] * len(s.items)
        times: list[int | None] = list(s.ts) if s.ts is not None else [None] * len(s.items)
        return zip(s.items, events, times, strict=True)

    users = ((s.user, steps(s)) for s in sequences if s.items)
    for user, (item, event_type, ts) in interleave(users, seed=seed):
        yield user, item, event_type, ts, None


def synthetic_sequences(
    users: int = 2000, items: int = 300, seed: int = 0
) -> Iterator[tuple[str, list[str]]]:
    """A small generated stream for when no dataset is present: users walk a
    sparse item graph, so transitions are learnable."""
    rng = random.Random(seed)
    graph = {i: rng.sample(range(items), 3) for i in range(items)}
    for u in range(users):
        cur = rng.randrange(items)
        seq = []
        for _ in range(rng.randint(3, 12)):
            seq.append(f"i{cur}")
            cur = rng.choice(graph[cur])
        yield f"u{u}", seq


def read_taobao(path: str | Path) -> Iterator[Event]:
    """Yield (user, item, event_type, ts_ms, category) in file order."""
    with open_text(path) as f:
        for row in csv.reader(f):
            if len(row) < 5 or row[3] not in TAOBAO_TYPES:
                continue
            yield row[0], row[1], TAOBAO_TYPES[row[3]], int(row[4]) * 1000, row[2] or None


def read_canonical(path: str | Path) -> Iterator[Event]:
    with open_text(path) as f:
        for row in csv.DictReader(f):
            category = row.get("category_id") or None
            yield row["user_id"], row["item_id"], row["event_type"], int(row["ts"]), category


def read_rees46(path: str | Path) -> Iterator[Event]:
    with open_text(path) as f:
        for row in csv.DictReader(f):
            kind = REES46_TYPES.get(row["event_type"])
            if kind is None:
                continue
            when = datetime.strptime(row["event_time"], "%Y-%m-%d %H:%M:%S UTC")
            ts = int(when.replace(tzinfo=UTC).timestamp() * 1000)
            yield row["user_id"], row["product_id"], kind, ts, row["category_id"] or None


def guess_format(path: Path) -> str:
    name = path.name.lower()
    if "taobao" in str(path).lower() or "userbehavior" in name or "timeslice" in name:
        return "taobao"
    if "rees46" in str(path).lower():
        return "rees46"
    if ".csv" in name:
        return "canonical"
    return "sequences"


def read_events(path: Path, fmt: str | None = None) -> Iterator[Event]:
    """Events of a log, sorted by time (stable: file order breaks ties). Sequences are
    interleaved with seed 0; their untimed events are one second apart."""
    fmt = fmt or guess_format(path)
    if fmt == "canonical":
        events: list[Event] = list(read_canonical(path))
    elif fmt == "taobao":
        events = list(read_taobao(path))
    elif fmt == "rees46":
        events = list(read_rees46(path))
    elif fmt == "sequences":
        stream = sequence_events(user_sequences(path), seed=0)
        events = [
            (u, i, e, 1000 * n if ts is None else ts, c)
            for n, (u, i, e, ts, c) in enumerate(stream)
        ]
    else:
        raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")
    events.sort(key=lambda e: e[3])
    return iter(events)
