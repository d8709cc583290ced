"""The batch worker's table layer, without a broker: :mod:`stream_app.state.write_back`
over a real Faust RocksDB store, and the Markov rows' replay guard."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP

from stream_app.state.markov_store import TableTransitionStore, decode_row_offset
from stream_app.state.write_back import WriteBack, event_context


class FakeEvent:
    """What a store asks of Faust's current event (weak-referenceable, as an Event is)."""

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


def fake_event(partition: int) -> Any:
    return FakeEvent(partition)


@pytest.fixture
def table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A Faust table on Faust's RocksDB store (never started: no broker)."""
    app = faust.App("wb-test", store="rocksdb://", datadir=str(tmp_path))
    t = app.Table("users", partitions=4, key_type=bytes, value_type=bytes)
    held = {TP(t.changelog_topic_name, p) for p in range(4)}
    app.assignor.__dict__["assigned_actives"] = lambda: held  # what iteration covers
    return t


def test_rocksdb_store_needs_the_event_context(table: Any) -> None:
    """The private dependency: a RocksDB store writes only with a current event,
    to that event's partition, and reads that partition."""
    with pytest.raises(AssertionError):
        table.data[b"k"] = b"v"
    with event_context(fake_event(1)):
        table.data[b"k"] = b"v"
        assert table.data.get(b"k") == b"v"
    with event_context(fake_event(2)):
        assert table.data.get(b"k") is None  # another partition's store
    assert dict(table.data.items()) == {b"k": b"v"}


def test_batch_writes_are_held_then_sent_once_per_key(table: Any) -> None:
    wb = WriteBack(table)
    p1, p2 = fake_event(1), fake_event(2)
    with event_context(p1):
        table.data[b"gone"] = b"old"
        table.data[b"kept"] = b"old"
    wb.begin()
    with event_context(p1):
        wb[b"u"] = b"1"
        wb[b"u"] = b"2"  # the batch's reads see its own writes
        assert wb.get(b"u") == b"2"
        del wb[b"gone"]
        assert wb.get(b"gone") is None
        with pytest.raises(KeyError):
            del wb[b"never"]
        assert dict(wb.items()) == {b"u": b"2", b"kept": b"old"}
    with event_context(p2):
        assert wb.get(b"u") is None  # as Faust reads: the current partition only
        wb[b"v"] = b"x"
    assert table.data.get(b"v") is None  # nothing local before delivery

    topic = table.changelog_topic_name
    assert wb.records() == [
        (topic, 1, b"u", b"2", None),
        (topic, 1, b"gone", None, None),
        (topic, 2, b"v", b"x", None),
    ]
    assert table.data.get(b"v") is None  # still nothing local: not yet delivered
    delivered = {TP(topic, 1): 1, TP(topic, 2): 2, TP("another-topic", 1): 9}
    wb.apply({1: p1, 2: p2}, delivered)
    assert dict(table.data.items()) == {b"u": b"2", b"kept": b"old", b"v": b"x"}
    with event_context(p1):  # Faust reads what was written, each in its partition's store
        assert (table.data.get(b"u"), table.data.get(b"v"), table.data.get(b"gone")) == (
            b"2",
            None,
            None,
        )
    with event_context(p2):
        assert table.data.get(b"v") == b"x"
    assert not wb.batching
    assert table.data.persisted_offset(TP("t", 1)) == 1
    assert table.data.persisted_offset(TP("t", 2)) == 2


def test_markov_rows_count_a_replayed_offset_once() -> None:
    table: dict[bytes, bytes] = {}
    store = TableTransitionStore(table, lambda: [0])
    store.record(None, "a", partition=0, offset=5)
    store.record("a", "a", partition=0, offset=6)  # a -> a: one row, counted and followed
    store.record("a", "a", partition=0, offset=6)  # the same event again: no change
    store.record("a", "b", partition=0, offset=6)  # rows at 6 hold it: only b's row is new
    row, at = decode_row_offset(table[b"0:a"])
    assert (row.count, row.successors, at) == (2, {"a": 1}, 6)
    b_row, b_at = decode_row_offset(table[b"0:b"])
    assert (b_row.count, b_at) == (1, 6)
    store.record(None, "c", partition=0)  # no offset: always counted
    store.record(None, "c", partition=0)
    assert decode_row_offset(table[b"0:c"])[0].count == 2


def test_markov_rows_of_every_held_partition_are_read(table: Any) -> None:
    """A row lives in its own partition's store; scoring sums every held partition's
    row, whichever event is current (a Faust read sees the current partition only)."""
    wb = WriteBack(table)
    store = TableTransitionStore(wb, lambda: [1, 2])
    p1, p2 = fake_event(1), fake_event(2)
    wb.begin()
    with event_context(p1):
        store.record("a", "b", partition=1, offset=1)
    with event_context(p2):
        store.record("a", "c", partition=2, offset=1)
        assert dict(store.successors("a")) == {"b": 1, "c": 1}  # held writes, both partitions
    wb.apply({1: p1, 2: p2}, {})
    store.invalidate()
    wb.begin()
    with event_context(p1):
        assert dict(store.successors("a")) == {"b": 1, "c": 1}  # from both partitions' stores
        assert wb.get(b"2:a") is None  # a plain read: the current partition's store only
    wb.abort()


def test_a_sealed_batch_is_read_by_the_next_until_it_is_written(table: Any) -> None:
    """The next batch is processed while the one before is delivered: it reads that
    batch's writes (newest first), and records and apply take the oldest batch."""
    wb = WriteBack(table)
    p1 = fake_event(1)
    with event_context(p1):
        table.data[b"a"] = b"store"
    wb.begin()
    with event_context(p1):
        wb[b"a"] = b"first"
        wb[b"b"] = b"first"
    wb.seal()
    wb.begin()
    with event_context(p1):
        assert (wb.get(b"a"), wb.get(b"b")) == (b"first", b"first")
        wb[b"b"] = b"second"
        del wb[b"a"]
        assert (wb.get(b"a"), wb.get(b"b")) == (None, b"second")
    assert dict(wb.items()) == {b"b": b"second"}
    topic = table.changelog_topic_name
    assert wb.records() == [(topic, 1, b"a", b"first", None), (topic, 1, b"b", b"first", None)]
    wb.apply({1: p1}, {})
    assert (table.data[b"a"], table.data[b"b"]) == (b"first", b"first")
    with event_context(p1):  # the open batch still sees its own writes over the store's
        assert (wb.get(b"a"), wb.get(b"b")) == (None, b"second")
    wb.seal()
    assert wb.records() == [(topic, 1, b"b", b"second", None), (topic, 1, b"a", None, None)]
    wb.apply({1: p1}, {})
    assert dict(table.data.items()) == {b"b": b"second"}


def _batches(seed: int, events: int) -> list[list[tuple[int, str | None, str, int]]]:
    """A random log of (partition, previous item, item, offset) cut into batches of
    1 to 40 events; few items, so rows change many times a batch."""
    import random

    rng = random.Random(seed)
    prev: dict[int, str | None] = {1: None, 2: None}
    log = []
    for offset in range(events):
        p, item = rng.choice([1, 2]), f"i{min(rng.randrange(12), rng.randrange(12))}"
        log.append((p, prev[p], item, offset))
        prev[p] = item
    out, at = [], 0
    while at < len(log):
        size = rng.randint(1, 40)
        out.append(log[at : at + size])
        at += size
    return out


def test_markov_rows_are_written_once_a_batch_as_counted_one_at_a_time(table: Any) -> None:
    """Rows counted into in a batch are held decoded and written once each when the
    batch is sealed, with the bytes per-event writes would have left; reads in the
    batch see the held counts."""
    wb = WriteBack(table)
    store = TableTransitionStore(wb, lambda: [1, 2], max_successors=4)
    plain: dict[bytes, bytes] = {}  # the same log, written at every event
    reference = TableTransitionStore(plain, lambda: [1, 2], max_successors=4)
    events = {1: fake_event(1), 2: fake_event(2)}
    for batch in _batches(seed=3, events=1500):
        wb.begin()
        changed = set()
        for p, prev, item, offset in batch:
            with event_context(events[p]):
                store.record(prev, item, partition=p, offset=offset)
            reference.record(prev, item, partition=p, offset=offset)
            changed |= {f"{p}:{i}".encode() for i in (prev, item) if i is not None}
            assert dict(store.successors(item)) == dict(reference.successors(item))
        records = wb.records()
        assert sorted(key for _, _, key, _, _ in records) == sorted(changed)
        assert all(value == plain[key] for _, _, key, value, _ in records)
        wb.apply(events, {})
    assert dict(table.data.items()) == plain


def _a_to_b_held(table: Any) -> tuple[WriteBack, TableTransitionStore, Any]:
    """Markov rows over a write-back of ``table``, a batch open with a -> b counted
    in partition 1, and that partition's event."""
    wb = WriteBack(table)
    store = TableTransitionStore(wb, lambda: [1])
    p1 = fake_event(1)
    wb.begin()
    with event_context(p1):
        store.record("a", "b", partition=1, offset=1)
    return wb, store, p1


def test_an_aborted_batch_leaves_no_count_in_the_markov_rows(table: Any) -> None:
    wb, store, p1 = _a_to_b_held(table)
    wb.apply({1: p1}, {})
    wb.begin()
    with event_context(p1):
        store.record("a", "c", partition=1, offset=2)
        store.record("c", "b", partition=1, offset=3)
    wb.abort()
    wb.begin()
    with event_context(p1):
        assert dict(store.successors("a")) == {"b": 1}
        store.record("a", "b", partition=1, offset=2)
    wb.apply({1: p1}, {})
    row, at = decode_row_offset(table.data._db_for_partition(1).get(b"1:a"))
    assert (row.successors, at) == ({"b": 2}, 2)
    assert table.data._db_for_partition(1).get(b"1:c") is None


def test_a_rebalance_during_a_batch_puts_its_held_rows_in_the_batch(table: Any) -> None:
    wb, store, p1 = _a_to_b_held(table)
    store.invalidate()  # partitions assigned or revoked while the batch waits
    with event_context(p1):
        assert dict(store.successors("a")) == {"b": 1}  # read back from the batch's writes
        store.record("b", "a", partition=1, offset=2)
    topic = table.changelog_topic_name
    assert [(t, p, key) for t, p, key, _, _ in wb.records()] == [
        (topic, 1, b"1:b"),
        (topic, 1, b"1:a"),
    ]


def test_user_states_are_written_once_a_batch_as_put_one_at_a_time(table: Any) -> None:
    """Users' states held decoded through a batch, erasures among them: the batch's
    records and the store at the end are what per-event writes leave, and sweeps
    (``items``) see the held states."""
    import random

    from stream_app.state.decoded import Decoded
    from stream_app.state.user_state import UserState

    rng = random.Random(5)
    wb, plain = WriteBack(table), {}
    store = Decoded(wb, UserState.decode, UserState.encode, size=3)
    reference = Decoded(plain, UserState.decode, UserState.encode, size=100)
    events = {1: fake_event(1), 2: fake_event(2)}
    for batch in range(60):
        wb.begin()
        for offset in range(batch * 20, batch * 20 + rng.randint(1, 20)):
            key = f"u{rng.randrange(6)}".encode()
            p, erase = 1 + key[-1] % 2, rng.random() < 0.1  # a user's one partition
            for users in (store, reference):
                with event_context(events[p]):
                    state = users.get(key, p)
                    if erase and state is not None:
                        users.delete(key)
                        continue
                    state = state or UserState()
                    state.apply(f"i{offset % 7}", "click", offset, None, offset, max_len=4)
                    state.partition = p
                    users.put(key, p, state)
        with event_context(events[1]):
            assert dict(store.items()) == dict(reference.items())
        records = wb.records()
        assert all(value == plain.get(key) for _, _, key, value, _ in records)
        wb.apply(events, {})
    assert dict(table.data.items()) == plain


def test_the_decoded_rows_and_states_are_reported_among_the_caches() -> None:
    from stream_app.caches import cache_sizes
    from stream_app.state.decoded import Decoded
    from stream_app.state.user_state import UserState

    transitions = TableTransitionStore({}, lambda: [0])
    states = Decoded({}, UserState.decode, UserState.encode, size=100)
    transitions.record("a", "b", partition=0, offset=0)
    states.put(b"u", 0, UserState())
    sizes = cache_sizes(transitions, states, None)
    assert (sizes["markov_decoded_rows"], sizes["users_decoded_states"]) == (2, 1)
