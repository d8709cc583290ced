"""Turn the shared datasets into a live-looking stream of events.

Two formats:

* sequences files (``user item item ...`` per line, items in time order):
  replayed as ``purchase`` events, many users interleaved the way real traffic
  is, each user's items kept in order;
* Taobao UserBehavior CSV (``user,item,category,behavior,ts``): replayed in
  file order with real event types (pv -> click, fav and cart -> add_to_cart,
  buy -> purchase).

>>> evs = list(interleave([("u1", ["a", "b"]), ("u2", ["c"])], active=2, seed=1))
>>> sorted(evs) == [("u1", "a"), ("u1", "b"), ("u2", "c")]
True
>>> [i for u, i in evs if u == "u1"]
['a', 'b']
"""

from __future__ import annotations

import csv
import gzip
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

TAOBAO_TYPES = {"pv": "click", "fav": "add_to_cart", "cart": "add_to_cart", "buy": "purchase"}


def read_sequences(path: Path) -> Iterator[tuple[str, list[str]]]:
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                yield parts[0], parts[1:]


def interleave(
    users: Iterable[tuple[str, list[str]]], active: int = 500, seed: int = 0
) -> Iterator[tuple[str, str]]:
    """Yield (user, item) with ``active`` users in flight at once, picked at random."""
    rng = random.Random(seed)
    source = iter(users)
    pool: list[tuple[str, Iterator[str]]] = []
    for user, items in source:
        pool.append((user, iter(items)))
        if len(pool) >= active:
            break
    while pool:
        i = rng.randrange(len(pool))
        user, items = pool[i]
        item = next(items, None)
        if item is None:
            nxt = next(source, None)
            if nxt is None:
                pool[i] = pool[-1]
                pool.pop()
            else:
                pool[i] = (nxt[0], iter(nxt[1]))
            continue
        yield user, item


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


def read_taobao(path: Path) -> Iterator[tuple[str, str, str, int, str | None]]:
    """Yield (user, item, event_type, ts_ms, category) in file order."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:  # type: ignore[operator]
        for row in csv.reader(f):
            if len(row) < 5 or row[3] not in TAOBAO_TYPES:
                continue
            yield row[0], row[1], TAOBAO_TYPES[row[3]], int(row[4]) * 1000, row[2] or None
