"""The feedback join's open lists, kept in a store (the worker's changelogged table)."""

from __future__ import annotations

from models.rerank.feedback import FeedbackJoin

CANDIDATES = (["a", "b"], [(1.0, 0.5), (2.0, 0.25)])  # items, their xs


def test_a_new_join_on_the_same_store_labels_the_lists_published_before() -> None:
    store: dict[bytes, bytes] = {}
    FeedbackJoin(store=store).publish("u", 0, *CANDIDATES)
    assert set(store) == {b"u"}
    restarted = FeedbackJoin(store=store)  # a restart: nothing in memory
    examples = restarted.observe("u", "b", "purchase", 1_000)
    assert [(x, y, w) for x, y, w in examples] == [
        ((2.0, 0.25), True, 4.0),
        ((1.0, 0.5), False, 1.0),
    ]


def test_events_in_flight_never_label_a_list_twice() -> None:
    store: dict[bytes, bytes] = {}
    join = FeedbackJoin(store=store)
    join.publish("u", 0, *CANDIDATES)
    assert join.observe("u", "a", "click", 1_000)  # labels the list...
    assert join.observe("u", "a", "click", 2_000) == []  # ...once, though the store
    assert b"u" in store  # still holds it until the next publish rewrites it
    join.publish("u", 2_000, *CANDIDATES)
    join.clear()  # partitions moved and came back: read the store again
    assert len(join.observe("u", "b", "click", 3_000)) == 2


def test_forget_and_eviction() -> None:
    store: dict[bytes, bytes] = {}
    join = FeedbackJoin(store=store, max_users=1)
    join.publish("u", 0, *CANDIDATES)
    join.publish("v", 0, *CANDIDATES)  # evicts "u" from memory only
    assert len(join.observe("u", "a", "click", 1_000)) == 2
    join.forget("v")
    assert b"v" not in store
    assert join.observe("v", "a", "click", 1_000) == []


def test_lists_written_by_an_older_worker_are_dropped_not_misread() -> None:
    import msgpack

    # Format 1 led with the feature names; its packed values mean nothing to an adjuster now.
    old = msgpack.packb([["f", "g"], [0, ["a"], b"\x00" * 16, 0, {}]])
    join = FeedbackJoin(store={b"u": old})
    assert join.observe("u", "a", "click", 1_000) == []
    join.publish("u", 2_000, *CANDIDATES)  # and the next publish rewrites the entry
    assert len(join.observe("u", "b", "click", 3_000)) == 2
