from stream_app.state.user_state import UserState


def test_keeps_last_n_in_ts_order() -> None:
    s = UserState()
    for off, ts in enumerate([5, 1, 9, 3, 7]):
        assert s.apply(f"i{ts}", "view", ts, None, off, max_len=3)
    assert [r.ts for r in s.records] == [5, 7, 9]
    assert s.last_offset == 4


def test_replayed_offset_and_repeated_event_id_change_nothing() -> None:
    s = UserState()
    assert s.apply("a", "click", 10, "e1", offset=3, max_len=5)
    snapshot = s.encode()
    assert not s.apply("b", "click", 11, "e2", offset=3, max_len=5)  # replay of offset 3
    assert s.encode() == snapshot
    assert not s.apply("a", "click", 10, "e1", offset=4, max_len=5)  # same id, new offset
    assert [r.item_id for r in s.records] == ["a"]
    assert s.last_offset == 4


def test_encoding_round_trip_and_empty() -> None:
    s = UserState()
    s.apply("x", "add_to_cart", 1, None, 0, 5)
    s.apply("y", "purchase", 2, "id", 1, 5)
    assert UserState.decode(s.encode()) == s
    assert UserState.decode(None) == UserState()


def test_the_history_follows_the_records_and_a_copy_handed_out_stays() -> None:
    import random

    rng = random.Random(11)
    s = UserState()
    handed = []
    for off in range(200):  # late events inserted, the oldest trimmed
        s.apply(f"i{rng.randrange(9)}", "click", rng.randrange(100), None, off, max_len=6)
        history = s.interactions()
        assert [tuple(e) for e in history] == [r[:3] for r in s.records]
        handed.append((history, [tuple(e) for e in history]))
    assert all([tuple(e) for e in h] == frozen for h, frozen in handed)
    assert UserState.decode(s.encode()).interactions() == s.interactions()
