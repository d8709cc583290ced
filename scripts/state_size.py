"""Bytes of state per user and per item, for capacity planning.

Encodes full states exactly as the worker stores them (``UserState.encode``,
``encode_row``) for a few id shapes, and writes ``results/state_size.json``.
On-disk (RocksDB, compressed) and changelog (compacted) sizes differ from these
raw value sizes; keys add the user id (or its 32-char pseudonym) again.

    .venv/bin/python scripts/state_size.py
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

from models.markov import ItemRow
from stream_app.settings import Settings
from stream_app.state.markov_store import encode_row
from stream_app.state.user_state import UserState

ROOT = Path(__file__).resolve().parents[1]
TS = 1_763_900_000_000  # 2025-11-23, ms: today's timestamps take 9 bytes in msgpack


def user_bytes(
    history: int, item: Callable[[int], str], event_id: Callable[[int], str | None]
) -> int:
    """Encoded size of a user holding ``history`` events with these id shapes."""
    state = UserState(partition=3)
    for i in range(history):
        state.apply(item(i), "click", TS + i * 1000, event_id(i), i, history)
    return len(state.encode())


def main() -> int:
    history = Settings().history_len
    beauty = "{:05d}".format  # Beauty's item ids: up to 5 digits
    shapes: dict[str, tuple[Callable[[int], str], Callable[[int], str | None]]] = {
        "5-digit item ids, producer event ids (run-seq, 14 chars)": (
            beauty,
            "1a2b3c4d-{:05d}".format,
        ),
        "5-digit item ids, UUID event ids (36 chars)": (beauty, lambda i: str(uuid.uuid4())),
        "10-char item ids, UUID event ids": ("item{:06d}".format, lambda i: str(uuid.uuid4())),
        "5-digit item ids, no event ids": (beauty, lambda i: None),
    }
    users = {name: user_bytes(history, item, eid) for name, (item, eid) in shapes.items()}
    successors = Settings().markov_max_successors
    item_row = len(encode_row(ItemRow(10_000, {f"{i:05d}": 100 + i for i in range(successors)})))
    report = {
        "history_len": history,
        "user_value_bytes": users,
        "pseudonymous_user_key_bytes": 32,
        "item_row_bytes_full": item_row,
        "markov_max_successors": successors,
    }
    out = ROOT / "results/state_size.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
