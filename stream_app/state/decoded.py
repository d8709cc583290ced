"""A table's values kept decoded, each changed one written once a batch.

Two of the worker's tables are read and written at almost every event: the
users' states and the Markov rows. Decoding a 50-event history takes about 20 µs
(with its list of interactions), a tenth of the worker's path for the event.
:class:`Decoded` keeps the values it read decoded, up to ``size`` (crude but
bounded: past it, all but the open batch's changed values are dropped). Over a
:class:`~stream_app.state.write_back.WriteBack` in a batch, a changed value is
held decoded and encoded once, when the batch is sealed; over a plain mapping
(a replay over dicts), and outside a batch, it is written at once.

A caller changes a value it got in place and then must :meth:`~Decoded.put` it.

>>> users: dict[bytes, bytes] = {}
>>> states = Decoded(users, bytes.decode, str.encode, size=100)
>>> states.get(b"u", partition=0) is None
True
>>> states.put(b"u", 0, "clicked i1")
>>> users
{b'u': b'clicked i1'}
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Generic, TypeVar

from stream_app.state.write_back import WriteBack

V = TypeVar("V")


class Decoded(Generic[V]):
    """``table``'s values decoded; a :class:`~stream_app.state.write_back.Holder`.
    ``on_drop``: what else to forget when a batch is aborted (derived data)."""

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        decode: Callable[[bytes], V],
        encode: Callable[[V], bytes],
        size: int,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        self.table = table
        self.decode = decode
        self.encode = encode
        self.size = size
        self.on_drop = on_drop
        self.values: dict[bytes, V] = {}  # as last put, or as read
        self._unwritten: dict[bytes, int] = {}  # put in the open batch: key -> partition
        self._write_back = table if isinstance(table, WriteBack) else None
        if self._write_back is not None:
            self._write_back.holders.append(self)

    def get(self, key: bytes, partition: int) -> V | None:
        """``key``'s value in ``partition`` (None: none stored), decoded once."""
        value = self.values.get(key)
        if value is None:
            wb = self._write_back
            raw = wb.get_in(partition, key) if wb is not None else self.table.get(key)
            if not raw:
                return None
            value = self.decode(raw)
            if len(self.values) >= self.size:
                self.values = {k: self.values[k] for k in self._unwritten}
            self.values[key] = value
        return value

    def put(self, key: bytes, partition: int, value: V) -> None:
        """Store ``value``: written now, or when the open batch is sealed."""
        self.values[key] = value
        if self._write_back is not None and self._write_back.batching:
            self._unwritten[key] = partition
        else:
            self.table[key] = self.encode(value)

    def delete(self, key: bytes) -> None:
        """Delete ``key``'s value (a changelog tombstone); it must be stored."""
        if key in self._unwritten:  # first stored in this batch: the table must hold it
            self._write(key, self._unwritten.pop(key))
        self.values.pop(key, None)
        del self.table[key]

    def items(self) -> Iterator[tuple[bytes, V]]:
        """Every value of the partitions held, decoded (for sweeps: not per event)."""
        self.write_held()  # the table view, as a per-event write would have left it
        for key, raw in list(self.table.items()):
            yield key, self.decode(raw)

    def _write(self, key: bytes, partition: int) -> None:
        assert self._write_back is not None  # held only over a write-back
        self._write_back.set_in(partition, key, self.encode(self.values[key]))

    # -- the batch's end, and rebalances (write_back.Holder) ------------------------
    def write_held(self) -> None:
        """Write each value put in the batch being sealed, once."""
        for key, partition in self._unwritten.items():
            self._write(key, partition)
        self._unwritten.clear()

    def drop_held(self) -> None:
        """The batch is aborted: its events changed the decoded values in place."""
        self._unwritten.clear()
        self.values.clear()
        if self.on_drop is not None:
            self.on_drop()

    def invalidate(self) -> None:
        """Partitions were assigned or revoked: values are read from the table again."""
        self.write_held()  # during a batch: its values go in its writes
        self.values.clear()
