"""The Markov scorer's counts, kept in a Faust table.

Faust writes a table key to the changelog partition of the event being
processed, so a key written from two input partitions would be restored from
whichever partition came last. Each input partition therefore owns its own
rows, keyed ``"<partition>:<item>"``; reads add up the rows of every partition
this worker holds, so one worker sees the whole stream and several workers each
see their share.

Rows are kept decoded once read (bounded, dropped on a rebalance). Over a
:class:`~stream_app.state.write_back.WriteBack` in a batch, a row counted into is
written once, when the batch is sealed: a popular item's row changes at many of
a batch's events, and is encoded and sent once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping

import msgpack

from models.markov import ItemRow, PopularityIndex
from stream_app.state.decoded import Decoded


def encode_row(row: ItemRow, offset: int = -1) -> bytes:
    return msgpack.packb([row.count, row.successors, offset], use_bin_type=True)


def _encode_row_offset(row_offset: tuple[ItemRow, int]) -> bytes:
    return encode_row(*row_offset)


def decode_row(raw: bytes | None) -> ItemRow:
    return decode_row_offset(raw)[0]


def decode_row_offset(raw: bytes | None) -> tuple[ItemRow, int]:
    """The row and the last input offset counted into it (-1: unknown)."""
    if not raw:
        return ItemRow(), -1
    count, successors, *rest = msgpack.unpackb(raw, raw=False)
    return ItemRow(count, successors), (rest[0] if rest else -1)


def row_key(partition: int, item: str) -> bytes:
    return f"{partition}:{item}".encode()


def _count_into(merged: dict[str, int], item: str, replaced: tuple[str, int] | None) -> None:
    """Apply one partition row's change to an item's merged successor counts: ``item``
    counted once, having ``replaced`` (a successor and its count in that row), if any.
    Popular items' rows change at almost every event: updating their merged counts
    costs less than reading and summing every partition's row again."""
    if replaced is None:
        merged[item] = merged.get(item, 0) + 1
        return
    gone, count = replaced
    left = merged.get(gone, 0) - count
    if left > 0:
        merged[gone] = left
    else:
        merged.pop(gone, None)
    merged[item] = merged.get(item, 0) + count + 1


class TableTransitionStore:
    """A :class:`models.markov.TransitionStore` over a bytes->bytes table."""

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        local_partitions: Callable[[], Iterable[int]],
        max_successors: int = 50,
        cache_size: int = 100_000,
        row_cache_size: int = 20_000,
    ) -> None:
        self.table = table
        self.local_partitions = local_partitions
        self.max_successors = max_successors
        self._popularity: PopularityIndex | None = None
        self._held: list[int] | None = None  # local_partitions(), until invalidate()
        # Merged successor counts per item (every held partition's row summed), kept
        # up to date as rows change: scoring reads many more rows than learning writes.
        self._merged: dict[str, dict[str, int]] = {}
        self.cache_size = cache_size
        # Each row and its offset, decoded once; counted into in a batch, written once.
        self.rows = Decoded(
            table, decode_row_offset, _encode_row_offset, row_cache_size, self._merged.clear
        )

    def record(
        self, prev_item: str | None, item: str, partition: int, offset: int | None = None
    ) -> None:
        """Count into ``partition``'s rows: Faust writes to the changelog partition of
        the event being processed, which must be the partition the row is keyed by.

        A row keeps the last input ``offset`` counted into it: a partition's events
        come in offset order, so a row at or past ``offset`` already holds this
        event (its changelog record was delivered before the user's, whose
        ``last_offset`` would otherwise have stopped the replay) and is left alone.
        """
        popularity = self.popularity  # build it before the write it would count twice
        key = row_key(partition, item)
        row, row_at = self._row(partition, key)
        fresh = offset is None or row_at < offset
        if fresh:
            row.count += 1
            self.rows.put(key, partition, (row, row_at if offset is None else offset))
            popularity.add(item)
        if prev_item is not None:
            pkey = row_key(partition, prev_item)
            prev, prev_at = self._row(partition, pkey)
            # item -> item: the row just counted, judged by what it held before
            if fresh if pkey == key else offset is None or prev_at < offset:
                replaced = prev.add_successor(item, self.max_successors)
                self.rows.put(pkey, partition, (prev, prev_at if offset is None else offset))
                merged = self._merged.get(prev_item)
                if merged is not None:
                    _count_into(merged, item, replaced)

    def _row(self, partition: int, key: bytes) -> tuple[ItemRow, int]:
        """``partition``'s row ``key`` and its offset (an empty row: none yet)."""
        return self.rows.get(key, partition) or (ItemRow(), -1)

    def successors(self, item: str) -> Mapping[str, int]:
        merged = self._merged.get(item)
        if merged is not None:
            return merged
        merged = {}
        if self._held is None:
            self._held = list(self.local_partitions())
        # Each partition's row from that partition's store (a write-back table reads
        # any partition; a plain mapping holds them all), or as counted into.
        for p in self._held:
            row = self.rows.get(row_key(p, item), p)
            if row is not None:
                for nxt, c in row[0].successors.items():
                    merged[nxt] = merged.get(nxt, 0) + c
        if len(self._merged) >= self.cache_size:
            self._merged.clear()  # crude but bounded; refills from the table
        self._merged[item] = merged
        return merged

    def popular(self, k: int) -> list[tuple[str, int]]:
        return self.popularity.top(k)

    @property
    def popularity(self) -> PopularityIndex:
        # Rebuilt from the table after each rebalance, since the set of
        # partitions (and so of counted rows) this worker holds has changed.
        if self._popularity is None:
            index = PopularityIndex()
            held = {str(p) for p in self.local_partitions()}
            for key, raw in self.table.items():
                part, _, item = key.decode().partition(":")
                count = decode_row(raw).count if part in held else 0
                if count:
                    index.add(item, count)
            self._popularity = index
        return self._popularity

    def invalidate(self) -> None:
        """Forget derived data; call when partitions are assigned or revoked."""
        self.rows.invalidate()  # during a batch: its counts go in its writes
        self._popularity = None
        self._held = None
        self._merged.clear()
