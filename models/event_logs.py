"""Event logs for replay: (user, item, event_type, ts_ms, category) in time order.

Formats: ``canonical`` (CSV with header ``user_id,item_id,event_type,ts``, ts in
ms, optionally gzipped, and an optional ``category_id`` column; what
``streamrec produce`` also reads), ``taobao`` (UserBehavior CSV), ``rees46``
(the Open CDP CSV), ``sequences`` (``user item item ...`` lines: purchases,
users interleaved, one second apart). ``category`` is None where the log has
none.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from models.datasets import interleave, read_sequences, read_taobao

Event = tuple[str, str, str, int, str | None]
FORMATS = ("canonical", "taobao", "rees46", "sequences")
REES46_TYPES = {"view": "click", "cart": "add_to_cart", "purchase": "purchase"}


def _text(path: Path) -> io.TextIOBase:
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path)  # type: ignore[return-value]


def guess_format(path: Path) -> str:
    name = path.name.lower()
    if "taobao" in str(path).lower() or "userbehavior" in name or "timeslice" in name:
        return "taobao"
    if "rees46" in str(path).lower():
        return "rees46"
    if ".csv" in name:
        return "canonical"
    return "sequences"


def read_canonical(path: Path) -> Iterator[Event]:
    with _text(path) as f:
        for row in csv.DictReader(f):
            category = row.get("category_id") or None
            yield row["user_id"], row["item_id"], row["event_type"], int(row["ts"]), category


def read_rees46(path: Path) -> Iterator[Event]:
    with _text(path) as f:
        for row in csv.DictReader(f):
            kind = REES46_TYPES.get(row["event_type"])
            if kind is None:
                continue
            when = datetime.strptime(row["event_time"], "%Y-%m-%d %H:%M:%S UTC")
            ts = int(when.replace(tzinfo=UTC).timestamp() * 1000)
            yield row["user_id"], row["product_id"], kind, ts, row["category_id"] or None


def read_events(path: Path, fmt: str | None = None) -> Iterator[Event]:
    """Events of a log, sorted by time (stable: file order breaks ties)."""
    fmt = fmt or guess_format(path)
    if fmt == "canonical":
        events: list[Event] = list(read_canonical(path))
    elif fmt == "taobao":
        events = list(read_taobao(path))
    elif fmt == "rees46":
        events = list(read_rees46(path))
    elif fmt == "sequences":
        pairs = interleave(read_sequences(path), seed=0)
        events = [(u, i, "purchase", 1000 * n, None) for n, (u, i) in enumerate(pairs)]
    else:
        raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")
    events.sort(key=lambda e: e[3])
    return iter(events)
