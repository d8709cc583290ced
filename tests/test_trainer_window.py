"""The trainer's window and intake: bounds, holdout split, snapshots, the workers' input rules."""

from __future__ import annotations

import json
from pathlib import Path

import msgpack

from stream_app.control import forget_headers, sweep_headers
from stream_app.erasure import ForgetRequest
from stream_app.pseudonym import Pseudonymizer
from stream_app.routing import REROUTED_HEADER, partition_for
from stream_app.settings import Settings
from stream_app.trainer import telemetry as metrics
from stream_app.trainer.intake import Intake
from stream_app.trainer.window import Window


def test_bounds_per_user_in_all_and_by_age() -> None:
    w = Window(max_events=5, user_events=3, max_age_ms=1000)
    for t in range(4):
        w.add("a", f"i{t}", "click", t, None)
    assert [r.item for r in w.users["a"]] == ["i1", "i2", "i3"] and w.total == 3
    w.add("b", "x", "click", 10, None)
    w.add("c", "y", "click", 11, None)
    w.add("c", "z", "click", 12, None)
    assert list(w.users) == ["b", "c"] and w.total == 3  # "a", idle longest, went first
    w.add("b", "late", "click", 5000, None)
    assert w.expire() == 3 and w.total == 1 and list(w.users) == ["b"]


def test_events_keep_time_order_and_repeated_ids_are_dropped() -> None:
    w = Window(100, 10, 10**9)
    assert w.add("u", "b", "click", 20, "e2")
    assert w.add("u", "a", "click", 10, "e1")
    assert not w.add("u", "a", "click", 10, "e1")
    assert [r.item for r in w.users["u"]] == ["a", "b"]


def test_round_data_holds_out_the_latest_arrivals() -> None:
    w = Window(100, 10, 10**9)
    for t, (user, item) in enumerate([("u", "1"), ("v", "5"), ("u", "2"), ("u", "3"), ("v", "6")]):
        w.add(user, item, "click", t, None)
    data = w.round_data(holdout_events=2, folded_seq=1)
    assert {s.user: s.items for s in data.train} == {"u": ["1", "2"], "v": ["5"]}
    assert [(e.history.items, e.target) for e in data.holdout] == [(["1", "2"], "3"), (["5"], "6")]
    # Arrival 1 ("u" -> "1") is already counted; "v" -> "5" and "1" -> "2" are not.
    assert sorted(data.fresh_pairs, key=str) == sorted([(None, "5"), ("1", "2")], key=str)


def test_snapshot_round_trip(tmp_path: Path) -> None:
    w = Window(100, 10, 10**9)
    w.add("u", "1", "view", 5, "e")
    w.offsets = {0: 7, 3: 2}
    w.save(tmp_path / "w.msgpack")
    back = Window(100, 10, 10**9)
    assert back.load(tmp_path / "w.msgpack") and not back.load(tmp_path / "none")
    assert (back.users, back.offsets, back.seq, back.total) == (w.users, w.offsets, 1, 1)


def _msg(user: str, item: str = "i", ts: int = 1000, **extra: object) -> bytes:
    value = {"user_id": user, "item_id": item, "event_type": "click", "ts": ts, **extra}
    return msgpack.packb(value)


def test_intake_applies_the_workers_rules() -> None:
    s = Settings(partitions=4, pseudonym_secret="k")
    w = Window(100, 10, 10**9)
    intake = Intake(s, w)
    home = partition_for(b"7", 4)
    before = metrics.INVALID.labels("undecodable")._value.get()
    assert not intake.take(b"\xc1", home, [])
    assert metrics.INVALID.labels("undecodable")._value.get() == before + 1
    assert not intake.take(_msg("7"), (home + 1) % 4, [])  # the worker forwards it
    assert intake.take(_msg("7"), (home + 1) % 4, [(REROUTED_HEADER, b"t:0:1")])
    assert intake.take(
        json.dumps({"user_id": 7, "item_id": 2, "event_type": "view", "ts": 9_000_000}).encode(),
        home,
        [],
    )
    assert not intake.take(_msg("7", ts=1), home, [])  # too late behind the user's newest
    pseudo = Pseudonymizer("k")("7")
    assert list(w.users) == [pseudo] and w.total == 2
    assert not intake.take(b"", home, sweep_headers())
    forget = ForgetRequest.new("7").encode()
    assert not intake.take(forget, home, forget_headers())
    assert w.total == 0 and not w.users
