import pytest

from models.base import Interaction, Scorer
from models.markov import DictTransitionStore, ItemRow, MarkovScorer
from stream_app.state.markov_store import TableTransitionStore, decode_row, encode_row


def seq(*items: str) -> list[Interaction]:
    return [Interaction(i, "click", n) for n, i in enumerate(items)]


def trained(store) -> MarkovScorer:  # type: ignore[no-untyped-def]
    m = MarkovScorer(store, window=3, decay=0.5, popularity_weight=0.1)
    for a, b in [("a", "b"), ("a", "b"), ("a", "c"), ("b", "d"), ("z", "a")]:
        m.learn_one(a, b)
    m.learn_one(None, "a")
    return m


def test_is_a_scorer_and_ranks_by_transitions() -> None:
    m = trained(DictTransitionStore())
    assert isinstance(m, Scorer)
    out = m.score([seq("a")], k=3)[0]
    assert [i for i, _ in out.items][:2] == ["b", "c"]
    assert out.influences == [1.0]


def test_influence_is_the_share_of_top_items_explained() -> None:
    m = trained(DictTransitionStore())
    out = m.score([seq("q", "b", "a")], k=2)[0]  # q is unknown: explains nothing
    assert len(out.influences) == 3
    assert out.influences[0] == 0.0
    assert out.influences[2] > out.influences[1] > 0
    assert sum(out.influences) == pytest.approx(1.0)


def test_cold_start_falls_back_to_popularity_with_equal_influence() -> None:
    m = trained(DictTransitionStore())
    out = m.score([seq("unknown1", "unknown2"), []], k=2)
    assert out[0].items and out[0].influences == [0.5, 0.5]
    assert out[1].items and out[1].influences == []


def test_successor_lists_are_bounded() -> None:
    row = ItemRow()
    for i in range(10):
        for _ in range(i + 1):
            row.add_successor(f"s{i}", max_successors=3)
    assert len(row.successors) == 3
    assert "s9" in row.successors
    assert decode_row(encode_row(row)) == row


def test_table_store_sums_the_partitions_this_worker_holds() -> None:
    table: dict[bytes, bytes] = {}
    held = [0, 1]
    store = TableTransitionStore(table, lambda: held)
    store.record("a", "b", partition=0)
    store.record("a", "b", partition=1)
    store.record("a", "c", partition=1)
    assert set(table) == {b"0:a", b"0:b", b"1:a", b"1:b", b"1:c"}
    assert dict(store.successors("a")) == {"b": 2, "c": 1}
    assert store.popular(2) == [("b", 2), ("c", 1)]
    store.record("a", "z", partition=1)  # a cached read must see the new transition
    assert dict(store.successors("a")) == {"b": 2, "c": 1, "z": 1}
    held.remove(1)
    store.invalidate()
    assert dict(store.successors("a")) == {"b": 1}
    assert store.popular(5) == [("b", 1)]


def test_cached_successor_counts_follow_every_change_of_a_row() -> None:
    """Merged counts kept up to date (replacements in full rows included) equal a
    fresh read of every held partition's row."""
    import random

    rng = random.Random(7)
    table: dict[bytes, bytes] = {}
    store = TableTransitionStore(table, lambda: [0, 1, 2], max_successors=4)
    items = [f"i{n}" for n in range(12)]
    prev: dict[int, str | None] = {0: None, 1: None, 2: None}
    for offset in range(3000):
        p, item = rng.randrange(3), rng.choice(items[: rng.choice([3, 12])])
        store.record(prev[p], item, partition=p, offset=offset)
        prev[p] = item
        for probe in rng.sample(items, 2):
            store.successors(probe)  # keep some merged counts cached
    fresh = TableTransitionStore(table, lambda: [0, 1, 2])
    for item in items:
        assert dict(store.successors(item)) == dict(fresh.successors(item)), item


def test_the_popularity_top_list_matches_a_full_count() -> None:
    import random
    from collections import Counter

    from models.markov import PopularityIndex

    rng = random.Random(7)
    index, truth = PopularityIndex(refresh_every=50), Counter()
    for n in range(5_000):
        item = f"i{int(rng.paretovariate(1.2)) + n // 500}"  # a drifting head and a long tail
        index.add(item)
        truth[item] += 1
        if n % 50 == 49:  # right after a refresh: the same counts as a full scan
            top = index.top(20)
            assert [c for _, c in top] == sorted(truth.values(), reverse=True)[:20]
            assert all(truth[i] == c for i, c in top)
