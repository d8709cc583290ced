"""Table writes once per changed key per batch, for the batch worker.

:class:`WriteBack` is a bytes->bytes mapping over one Faust table. Outside a
batch every operation goes to the table, as before. Between :meth:`~WriteBack.begin`
and :meth:`~WriteBack.apply` writes and deletions are held per (input partition,
key) and reads see them first, then the partition's local store (its RocksDB,
read directly): exactly what per-event ``table[k] = v`` would have shown, since
a Faust store reads the current event's partition. At the batch's end
:meth:`~WriteBack.records` gives one changelog record per changed key (a
tombstone for a deletion, as Faust's ``del table[k]``) for the batch loop to
send; once they are delivered, :meth:`~WriteBack.apply` writes the local store
(one RocksDB write batch per partition) and then the persisted changelog
offset. The local store is thus never ahead of the changelog: a crash before
delivery leaves both where they were, and the batch is processed again. A
batch :meth:`~WriteBack.seal`-ed while it is delivered stays visible to the next
batch's reads until it is applied, so the next batch is processed meanwhile.
A :class:`Holder` (:class:`~stream_app.state.decoded.Decoded`: the users'
states, the Markov counts) keeps its changes decoded through a batch and writes
each changed key once, when the batch is sealed.

Faust 0.15.3 writes a RocksDB table only while an event is current
(``Store._set`` takes the partition from ``current_event()``), and reads the
current event's partition. That event is a private ContextVar of
``faust.streams``; :func:`event_context` is the one place that sets it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, Protocol

import faust
import rocksdict
from faust import streams as _faust_streams

from stream_app.kafka.batches import Record

_CURRENT_EVENT = _faust_streams._current_event  # private: see the module docstring


@contextmanager
def event_context(event: Any) -> Iterator[None]:
    """Make ``event`` Faust's current event (what stream iteration does per event)."""
    token = _CURRENT_EVENT.set(weakref.ref(event))
    try:
        yield
    finally:
        _CURRENT_EVENT.reset(token)


def current_partition() -> int:
    """The input partition of the current event (there must be one)."""
    event = _faust_streams.current_event()
    if event is None:
        raise RuntimeError("a table is written in a batch outside event_context")
    return int(event.message.partition)


Writes = dict[tuple[int, bytes], bytes | None]  # (partition, key) -> value, None: deleted


class Holder(Protocol):
    """A writer that holds a batch's changes to a :class:`WriteBack` decoded (a
    value changed many times in a batch is then encoded once)."""

    def write_held(self) -> None:
        """Write every held change (with :meth:`WriteBack.set_in`): the batch is sealed."""

    def drop_held(self) -> None:
        """Forget every held change and what it was derived from: the batch is aborted."""


class WriteBack(MutableMapping[bytes, bytes]):
    def __init__(self, table: faust.Table) -> None:
        self.table = table
        self._pending: Writes | None = None  # the open batch's
        self._sealed: list[Writes] = []  # earlier batches', being delivered, oldest first
        self._read: dict[tuple[int, bytes], bytes | None] = {}  # the store, as read this batch
        # Writers that keep their changes decoded until the batch is sealed.
        self.holders: list[Holder] = []

    @property
    def batching(self) -> bool:
        return self._pending is not None

    def begin(self) -> None:
        """Open a batch: its writes are held (reads see them, and a sealed batch's)."""
        self._pending = {}
        self._read = {}

    def seal(self) -> None:
        """Close the open batch's writes. Until :meth:`apply` writes them locally the
        next batch's reads still see them: the next batch can be processed while
        this one is delivered."""
        assert self._pending is not None, "seal() outside a batch"
        for holder in self.holders:
            holder.write_held()
        self._sealed.append(self._pending)
        self._pending = None
        self._read = {}

    def abort(self) -> None:
        """Forget the open batch's writes (nothing of it was written locally)."""
        for holder in self.holders:
            holder.drop_held()
        self._pending = None
        self._read = {}

    # -- the mapping --------------------------------------------------------------
    def __getitem__(self, key: bytes) -> bytes:
        if self._pending is None:
            return self.table[key]
        value = self.get_in(current_partition(), key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: bytes, default: Any = None) -> Any:
        if self._pending is None:
            return self.table.get(key, default)
        value = self.get_in(current_partition(), key)
        return default if value is None else value

    def get_in(self, partition: int, key: bytes) -> bytes | None:
        """``key`` as ``partition``'s store holds it, whichever event is current (a
        Faust read sees the current event's partition only)."""
        slot = (partition, key)
        if self._pending is not None and slot in self._pending:
            return self._pending[slot]
        for writes in reversed(self._sealed):  # newest first
            if slot in writes:
                return writes[slot]
        if self._pending is not None and slot in self._read:
            return self._read[slot]
        db = self._partition_db(partition)
        if db is None:  # a store without partitions (memory): it holds every key
            value: bytes | None = self.table.data.get(key)
        else:
            value = db.get(key)
        if self._pending is not None:
            # Nothing else writes the store during a batch: one read per key is enough.
            self._read[slot] = value
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        if self._pending is None:
            self.table[key] = value
        else:
            self._pending[(current_partition(), key)] = value

    def set_in(self, partition: int, key: bytes, value: bytes) -> None:
        """Hold a write of ``key`` to ``partition``'s store in the open batch,
        whichever event is current."""
        assert self._pending is not None, "set_in() outside a batch"
        self._pending[(partition, key)] = value

    def __delitem__(self, key: bytes) -> None:
        if self._pending is None:
            del self.table[key]
            return
        self[key]  # KeyError when absent, as a table raises
        self._pending[(current_partition(), key)] = None

    def _merged(self) -> dict[bytes, bytes]:
        """Every key of the partitions held, with this batch's writes applied."""
        out = dict(self.table.items())
        for writes in [*self._sealed, self._pending or {}]:
            for (_, key), value in writes.items():
                if value is None:
                    out.pop(key, None)
                else:
                    out[key] = value
        return out

    def items(self) -> Any:
        return self.table.items() if self._pending is None else self._merged().items()

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.table) if self._pending is None else iter(self._merged())

    def __len__(self) -> int:
        return len(self.table) if self._pending is None else len(self._merged())

    def _partition_db(self, partition: int) -> Any:
        """The RocksDB of ``partition`` (Faust opens it on first use), or None for
        another store. Private to Faust's store: its own get and set wrap each call
        in a current-event lookup and a key-index update that cost more than the read
        (the key index only speeds up lookups made outside stream iteration)."""
        open_db = getattr(self.table.data, "_db_for_partition", None)
        return None if open_db is None else open_db(partition)

    # -- the batch's end ----------------------------------------------------------
    def _delivering(self) -> Writes:
        """The oldest batch not written locally (the open one is sealed if none is)."""
        if not self._sealed:
            self.seal()
        return self._sealed[0]

    def records(self) -> list[Record]:
        """The oldest unwritten batch's records: one changelog record per changed key,
        to its partition (a tombstone for a deletion), for
        :class:`~stream_app.kafka.batches.BatchSender`."""
        topic = self.table.changelog_topic.get_topic_name()
        return [(topic, p, key, value, None) for (p, key), value in self._delivering().items()]

    def apply(self, events: Mapping[int, Any], last_offsets: Mapping[Any, int]) -> None:
        """After every record of :meth:`records` was delivered: write the local store
        (``events``: one event per input partition written), then the persisted
        changelog offsets (``last_offsets``: the highest offset delivered per
        topic-partition; other topics' are ignored). Ends that batch."""
        writes = self._delivering()
        store = self.table.data
        batches: dict[int, rocksdict.WriteBatch] = {}
        for (partition, key), value in writes.items():
            if self._partition_db(partition) is None:  # not RocksDB: through the store
                with event_context(events[partition]):
                    if value is None:
                        store.pop(key, None)
                    else:
                        store[key] = value
                continue
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = rocksdict.WriteBatch(raw_mode=True)
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        for partition, batch in batches.items():
            db = self._partition_db(partition)
            assert db is not None
            db.write(batch)  # a partition's writes at once (atomic)
        topic = self.table.changelog_topic.get_topic_name()
        for tp, offset in last_offsets.items():
            if tp.topic == topic:
                with event_context(events[tp.partition]):
                    store.set_persisted_offset(tp, offset)
        self._sealed.pop(0)  # now in the store: reads find it there
