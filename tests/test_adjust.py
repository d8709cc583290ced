"""The online adjuster's parts: labelling, prequential metrics, learning, replay."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from river import metrics

from models.rerank.feedback import FeedbackJoin
from models.rerank.logreg import LogRegAdjuster
from models.rerank.quality import Prequential, hit_ndcg
from models.rerank.slots import SlotAdjuster
from stream_app.replay.runner import run


def test_labelling_on_a_hand_made_sequence() -> None:
    j = FeedbackJoin(horizon_events=2, horizon_ms=60_000, negatives_per_list=10)
    j.publish("u", 0, list("abcd"), [(float(n),) for n in range(4)])
    assert j.observe("u", "c", "click", 1_000) == []  # window still open
    out = j.observe("u", "a", "add_to_cart", 2_000)  # second event closes it
    labels = {x[0]: (y, w) for x, y, w in out}
    assert labels == {0.0: (True, 2.0), 2.0: (True, 1.0), 1.0: (False, 1.0), 3.0: (False, 1.0)}
    assert len(j) == 0
    # Closed by time: an event after the horizon labels with what was seen before it.
    j.publish("v", 0, ["x"], [(9.0,)])
    assert j.observe("v", "x", "purchase", 61_000) == [((9.0,), False, 1.0)]


def test_prequential_metrics_on_a_hand_computed_example() -> None:
    q = Prequential(k=3)
    q.add(["a", "b", "c"], "a")  # rank 1: 1 / log2(2) = 1
    q.add(["a", "b", "c"], "c")  # rank 3: 1 / log2(4) = 0.5
    q.add(["a", "b", "c"], "d")  # miss
    q.add(["d", "a", "b", "c"], "c")  # rank 4: beyond k
    assert q.events == 4
    assert q.hr == 2 / 4
    assert abs(q.ndcg - 1.5 / 4) < 1e-12
    assert hit_ndcg(["x", "y"], "y", k=1) == (0.0, 0.0)


def test_the_adjuster_learns_a_planted_signal() -> None:
    rng = random.Random(0)
    adjuster = LogRegAdjuster(names=("signal", "noise", "other"))
    auc = metrics.ROCAUC()
    for n in range(4000):
        signal = rng.random()
        x = (signal, rng.random(), rng.gauss(0, 1))
        y = rng.random() < (0.9 if signal > 0.5 else 0.1)  # engagement follows the feature
        if n >= 2000:
            auc.update(y, adjuster.predict_one(x))
        adjuster.learn_one(x, y)
    assert auc.get() > 0.8


def _log(path: Path) -> Path:
    rng = random.Random(1)
    rows = ["user_id,item_id,event_type,ts"]
    for n in range(3000):
        user = f"u{rng.randrange(150)}"
        item = f"i{rng.randrange(60)}"
        kind = rng.choice(["click", "click", "click", "add_to_cart", "purchase"])
        rows.append(f"{user},{item},{kind},{1_000 * n}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_replay_eval_is_deterministic(tmp_path: Path) -> None:
    log = _log(tmp_path / "events.csv")
    a = run(log, "canonical", progress=False)
    b = run(log, "canonical", progress=False)
    for r in (a, b):
        for key in ("seconds", "events_per_s"):
            r.pop(key)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["events_replayed"] == 3000 and a["base"]["events"] > 0
    assert {"HR@10", "NDCG@10", "events"} <= set(a["adjusted"])
    assert a["adjuster"]["examples"] > 0


def _results(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("seconds", "events_per_s", "workers")}


def test_replay_eval_in_two_workers_splits_users_and_is_deterministic(tmp_path: Path) -> None:
    log = _log(tmp_path / "events.csv")
    one = run(log, "canonical", progress=False)
    a = run(log, "canonical", progress=False, workers=2)
    b = run(log, "canonical", progress=False, workers=2)
    assert json.dumps(_results(a), sort_keys=True) == json.dumps(_results(b), sort_keys=True)
    shares = [w["events"] for w in a["workers"]]
    assert sum(shares) == a["events_replayed"] == 3000 and min(shares) > 0
    # Whether an event is evaluated depends on its user's own events only, and each
    # user is replayed whole by one worker: the same events are scored.
    for name in ("base", "adjusted", "popularity"):
        assert a[name]["events"] == one[name]["events"]
    assert a["purchase"]["events"] == one["purchase"]["events"]
    assert a["purchase"]["positives"] == one["purchase"]["positives"]
    # ...but by models that learned from half the users each.
    assert a["adjuster"]["examples"] != one["adjuster"]["examples"]
    with pytest.raises(ValueError, match="workers"):
        run(log, "canonical", progress=False, workers=99)


def test_a_failing_replay_worker_is_reported() -> None:
    from stream_app.replay.workers import run_split

    def prepare(worker: int):  # type: ignore[no-untyped-def]
        if worker == 1:
            raise KeyError("set-up broke")
        return lambda tick: worker

    with pytest.raises(RuntimeError, match=r"(?s)worker 1 failed.*set-up broke"):
        run_split(prepare, workers=2, total=0, progress=False)

    def later(worker: int):  # type: ignore[no-untyped-def]
        def work(tick):  # type: ignore[no-untyped-def]
            if worker == 0:
                raise ZeroDivisionError("the work broke")
            return worker

        return work

    with pytest.raises(RuntimeError, match=r"(?s)worker 0 failed.*the work broke"):
        run_split(later, workers=2, total=0, progress=False)


def test_the_drift_detector_fires_on_a_planted_shift_and_not_on_a_stationary_stream() -> None:
    from models.rerank.drift import DriftWatch

    rng = random.Random(3)
    stationary = DriftWatch()
    assert not any(stationary.update_hit(float(rng.random() < 0.05)) for _ in range(20_000))
    shifted = DriftWatch()
    before = [float(rng.random() < 0.05) for _ in range(5_000)]
    after = [float(rng.random() < 0.30) for _ in range(5_000)]
    assert not any(shifted.update_hit(h) for h in before)
    assert any(shifted.update_hit(h) for h in after)
    assert shifted.detections["hit_rate"] >= 1


def test_predict_many_equals_predict_one() -> None:
    rng = random.Random(5)
    adjuster = LogRegAdjuster(names=("a", "b", "c"))
    rows = [(rng.random(), rng.gauss(0, 3), 1.0) for _ in range(300)]
    for x in rows:
        adjuster.learn_one(x, x[0] > 0.5)
    batch = adjuster.predict_many(rows[:50])
    for x, p in zip(rows[:50], batch, strict=True):
        assert abs(p - adjuster.predict_one(x)) < 1e-9
    assert LogRegAdjuster(names=("a",)).predict_many([(1.0,)]) == [0.5]  # untrained


def test_feedback_join_holds_at_most_max_users() -> None:
    j = FeedbackJoin(max_users=3)
    for n in range(10):
        j.publish(f"u{n}", n, ["a"], [(1.0,)])
    assert len(j) == 3
    assert j.observe("u0", "a", "click", 20) == []  # evicted: its list is gone
    assert j.observe("u9", "a", "click", 20) != []


def test_trending_matches_a_full_scan_of_decayed_popularity() -> None:
    import random

    from models.rerank.signals import ItemSignals

    rng = random.Random(3)
    signals = ItemSignals(half_lives_s=(60.0,), trending_size=20, category_trending_size=8)
    ts = 0
    for _ in range(5000):
        ts += rng.randrange(1, 500)
        # A drifting catalogue: which items are hot changes over time. Item i is of
        # category i % 7; half the events do not name it (it is known from before).
        n = int(rng.gauss(ts / 20_000, 5))
        signals.observe(f"i{n}", ts, f"c{n % 7}" if rng.random() < 0.5 else None)
        if rng.random() < 0.02:
            scan = sorted(signals._counts, key=lambda i: -signals.popularity(i, ts)[0])
            assert signals.trending(10) == scan[:10]
            category = f"c{n % 7}"
            in_it = [i for i in scan if signals.category(i) == category]
            assert signals.trending_in(category, 5) == in_it[:5]


def test_negatives_are_sampled_from_every_position_of_the_list() -> None:
    # A stride over the list never picked its last candidates (the trending ones).
    j = FeedbackJoin(negatives_per_list=5)
    picked: set[float] = set()
    for n in range(200):
        j.publish("u", n * 10, [f"i{n}-{c}" for c in range(23)], [(float(c),) for c in range(23)])
        picked |= {x[0] for x, y, _ in j.observe("u", "elsewhere", "click", n * 10 + 1)}
    assert picked == {float(c) for c in range(23)}


def test_the_slot_adjuster_learns_a_planted_signal() -> None:
    from models.rerank.slots import SlotAdjuster

    rng = random.Random(0)
    slots = SlotAdjuster()
    auc = metrics.ROCAUC()
    for n in range(4000):
        recent = rng.randrange(1, 10)  # the user's item at this recency rank...
        x = (0, recent, 1)  # (band, recency rank, count): the band is left uninformative
        y = rng.random() < (0.6 if recent <= 2 else 0.05)  # ...engages when it is recent
        if n >= 2000:
            auc.update(y, slots.predict_one(x))
        slots.learn_one(x, y)
    assert auc.get() > 0.8


def test_slots_are_source_band_and_category_then_rank_then_count() -> None:
    from models.base import Interaction, Scored
    from models.rerank.features import ListContext, UserView
    from models.rerank.signals import ItemSignals
    from models.rerank.slots import SlotAdjuster

    history = [Interaction(i, "click", n) for n, i in enumerate(["old", "b", "old", "now"])]
    signals = ItemSignals()
    for item, category in [("now", "shoes"), ("b", "shoes"), ("old", "hats"), ("x", "hats")]:
        signals.observe(item, 0, category)
    signals.observe("c", 0, "shoes")
    base = Scored([("b", 0.5), ("x", 0.3), ("y", 0.2)], [0.25] * 4)
    rank_of = {i: r for r, (i, _) in enumerate(base.items)}
    ctx = ListContext(UserView.of(history), signals, rank_of, {"t"}, base, "shoes", {"c": 0})
    slots = SlotAdjuster()
    items = ["b", "old", "x", "y", "t", "c"]
    got = dict(zip(items, slots.describe(items, ctx), strict=True))
    # "b": mine (recency rank 2, once) wins over its scorer rank; "old": rank 1, twice.
    # Category: 2 = the current item's ("shoes"), 1 = another of the user's ("hats").
    assert got == {
        "b": (2, 2, 2, 1),
        "old": (1, 1, 1, 2),
        "x": (21, 1, 21, 0),
        "y": (21, 0, 22, 0),
        "t": (40, 0, 40, 0),
        "c": (50, 2, 50, 0),  # trending in the current category, its top item
    }
    assert SlotAdjuster(levels=1).describe(["x"], ctx) == [(21, 1)]
    # Without categories every candidate's flag is 0.
    plain = ListContext(UserView.of(history), ItemSignals(), rank_of, {"t"}, base)
    assert slots.describe(["b", "x"], plain) == [(2, 0, 2, 1), (21, 0, 21, 0)]


def test_ranker_proposes_items_trending_in_the_current_category() -> None:
    from models.base import Interaction, Scored
    from models.rerank.ranker import Ranker
    from models.rerank.signals import ItemSignals
    from models.rerank.slots import SlotAdjuster

    signals = ItemSignals()
    for n in range(5):  # "hot" is the most popular shoe; "cap" is a hat
        signals.observe("hot", n, "shoes")
    signals.observe("new-shoe", 5, "shoes")
    signals.observe("cap", 6, "hats")
    signals.observe("now", 7, "shoes")
    ranker = Ranker(signals, trending_k=0, category_k=2)
    ranked = ranker.rank(SlotAdjuster(), [Interaction("now", "click", 7)], Scored([], []), 10)
    # the current item is never its own candidate; the hat is of another category
    assert ranked.pool == ["hot", "new-shoe"]


def test_slot_predict_many_equals_predict_one_and_survives_a_pickle() -> None:
    import pickle

    from models.rerank.slots import SlotAdjuster

    rng = random.Random(2)
    slots = SlotAdjuster()
    keys = [(b, f, r, c) for b in range(3) for f in range(3) for r in range(4) for c in range(2)]
    for _ in range(3000):
        x = rng.choice(keys)
        slots.learn_one(x, rng.random() < 0.1 * (1 + x[2]), rng.choice([1.0, 4.0]))
    unseen = [(9, 9, 9, 9), (0, 0, 9, 0)]
    batch = slots.predict_many(keys + unseen)
    assert batch == [slots.predict_one(x) for x in keys + unseen]
    assert batch[-2] == slots.prior  # nothing known at any level
    copy = pickle.loads(pickle.dumps(slots))
    assert copy.predict_many(keys) == batch[: len(keys)]
    copy.learn_one(keys[0], True)  # the copy's chains are its own rates
    assert copy.predict_one(keys[0]) > slots.predict_one(keys[0])


def test_a_rise_in_the_adjusters_loss_resets_it() -> None:
    from stream_app.adjustment import OnlineAdjustment

    online = OnlineAdjustment(k=10)
    x = (1, 1, 1)
    for _ in range(1_000):  # learned: this slot is never engaged with
        online.learn([(x, False, 1.0), (x, False, 1.0)])
    assert online.drift.detections["loss"] == 0 and online.adjuster.examples == 2_000
    for _ in range(300):  # now it always is
        online.learn([(x, True, 1.0), (x, True, 1.0)])
    assert online.drift.detections["loss"] >= 1
    assert online.adjuster.examples < 600  # reset, then re-learned the new regime


def test_slot_predictions_stay_exact_while_learning_in_between() -> None:
    # predict_many keeps predictions until a slot under the same root learns.
    from models.rerank.slots import SlotAdjuster

    rng = random.Random(4)
    slots = SlotAdjuster(m=5.0)
    keys = [(b, f, r, c) for b in range(4) for f in range(3) for r in range(3) for c in range(2)]
    for _ in range(2000):
        asked = rng.sample(keys, 12)
        assert slots.predict_many(asked) == [slots.predict_one(x) for x in asked]
        for x in rng.sample(keys, rng.randrange(0, 4)):
            slots.learn_one(x, rng.random() < 0.3)
    slots.reset()
    assert slots.predict_many(keys) == [slots.prior] * len(keys)


def test_feedback_join_labels_alike_packed_or_by_reference() -> None:
    from models.rerank.feedback import FeedbackJoin

    rng = random.Random(6)
    store: dict[bytes, bytes] = {}
    joins = [FeedbackJoin(pack=True), FeedbackJoin(pack=False, store=store)]
    labels: list[list[object]] = [[], []]
    for n in range(500):
        user, item = f"u{rng.randrange(20)}", f"i{rng.randrange(30)}"
        items = rng.sample([f"i{c}" for c in range(30)], 8)
        xs = [(float(rng.randrange(5)), float(c)) for c in range(8)]
        for join, out in zip(joins, labels, strict=True):
            out += join.observe(user, item, "click", n * 1000)
            join.publish(user, n * 1000, items, xs)
    assert labels[0] == labels[1] and labels[0]
    joins[1].clear()  # read back from the store, packed there
    reread = FeedbackJoin(store=store)
    late = ("u1", "i1", "click", 10**9)  # closes every open list by time
    assert reread.observe(*late) == joins[0].observe(*late)


def test_a_known_miss_counts_like_a_missed_list() -> None:
    missed, added = Prequential(k=10), Prequential(k=10)
    for q in (missed, added):
        q.add(["a", "b"], "b")
    missed.miss()
    added.add(["a", "b"], "z")
    assert missed.summary() == added.summary() and missed.window_hr == added.window_hr
    assert hit_ndcg(["a"] * 3 + ["b"], "b", k=3) == (0.0, 0.0)  # past k: a miss


def _bench_rees46(tmp_path: Path, *args: str) -> dict:
    """``scripts/bench_replay.py ARGS`` on the REES46 head; its JSON report."""
    from scripts.bench_replay import LOGS, main

    if not LOGS["rees46"].exists():
        pytest.skip("the REES46 head is not in ../shared/datasets")
    out = tmp_path / "bench.json"
    assert main([*args, "--logs", "rees46", "--json", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.slow
def test_bench_replay_compares_two_codes_on_the_same_results(tmp_path: Path) -> None:
    args = ("--against", "HEAD", "--rounds", "1", "--limit", "300")
    report = _bench_rees46(tmp_path, *args)["logs"]["rees46"]
    assert report["same_results"] is True
    assert len(report["events_per_s"]["this"]) == len(report["events_per_s"]["HEAD"]) == 1
    assert report["ratio"] > 0


@pytest.mark.slow
def test_bench_replay_compares_worker_counts(tmp_path: Path) -> None:
    report = _bench_rees46(tmp_path, "--workers", "1,2", "--rounds", "2", "--limit", "400")
    rees46 = report["logs"]["rees46"]
    assert report["workers"] == [1, 2] and rees46["same_results"] is True
    assert [len(v) for v in rees46["events_per_s"].values()] == [2, 2]
    assert [len(v) for v in rees46["probe_s"].values()] == [2, 2]  # the machine, each run
    assert rees46["ratio"] == rees46["median"]["workers=2"] / rees46["median"]["workers=1"]


def test_feedback_negatives_are_a_uniform_sample_fixed_by_the_list() -> None:
    from collections import Counter

    from models.rerank.feedback import sample

    counts: Counter[int] = Counter()
    for seed in range(6000):
        picked = sample(list(range(30)), 5, seed * 2_654_435_761)
        assert len(set(picked)) == 5 and picked == sorted(picked)
        assert picked == sample(list(range(30)), 5, seed * 2_654_435_761)
        counts.update(picked)
    expected = 6000 * 5 / 30
    assert set(counts) == set(range(30))  # the last candidates too (the trending ones)
    assert all(abs(n - expected) < 0.15 * expected for n in counts.values())


def test_slot_block_learning_leaves_the_rates_of_learning_one_by_one() -> None:
    rng = random.Random(3)
    slots = [(1, 2, 1, 0), (20, 0, 20, 0), (20, 1, 22, 0), (40, 0, 40, 0)]
    examples = [
        (rng.choice(slots), rng.random() < 0.3, rng.choice([1.0, 2.0, 4.0])) for _ in range(500)
    ]
    one, block = SlotAdjuster(), SlotAdjuster()
    for x, y, w in examples:
        one.learn_one(x, y, w)
    block.predict_many(slots)  # cached predictions must not outlive the block
    block.learn_many(examples)
    assert block.examples == one.examples == 500
    for x in slots:
        assert block.predict_one(x) == pytest.approx(one.predict_one(x), rel=1e-9)
    assert block.predict_many(slots) == pytest.approx(one.predict_many(slots), rel=1e-9)


def test_online_adjustment_learns_in_blocks_of_labelling_events(tmp_path: Path) -> None:
    from stream_app.adjustment import OnlineAdjustment

    online = OnlineAdjustment(k=10, learn_every=3)
    event = [((20, 0, 20, 0), False, 1.0), ((1, 2, 1, 0), True, 4.0)]
    online.learn(event)
    online.learn(event)
    assert online.adjuster.examples == 0  # held until the block is full
    online.learn(event)
    assert online.adjuster.examples == 6
    online.learn(event)
    online.save(tmp_path)  # a checkpoint holds everything labelled so far
    restored = OnlineAdjustment(k=10, learn_every=3)
    assert restored.restore(tmp_path)
    assert restored.adjuster.examples == 8
