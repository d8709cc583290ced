"""The purchase-propensity head and its prequential classification metrics."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from models.base import Interaction, Scored
from models.rerank.online_logistic import ScaledLogistic
from models.rerank.propensity import PURCHASE_FEATURES, PurchasePropensity, purchase_features
from models.rerank.quality import ClassificationQuality, LogitHistogramAUC
from stream_app.adjustment import OnlineAdjustment


def test_purchase_features_on_a_hand_made_history() -> None:
    history = [
        Interaction("a", "click", 0),
        Interaction("a", "add_to_cart", 1_000),
        Interaction("b", "add_to_cart", 2_000),
        Interaction("b", "purchase", 3_000),
        Interaction("a", "click", 3_000 + 31 * 60 * 1000),  # a new session
    ]
    x = dict(zip(PURCHASE_FEATURES, purchase_features(history), strict=True))
    assert (x["last_click"], x["last_cart"], x["last_purchase"]) == (1.0, 0.0, 0.0)
    assert x["current_carted"] == 1.0  # "a" is in the cart, not bought
    assert x["open_carts"] == 0.6931471805599453  # log1p(1): "b" was bought
    assert (x["mix_click"], x["mix_cart"], x["mix_purchase"]) == (0.4, 0.4, 0.2)
    assert x["session_len"] == 0.6931471805599453  # log1p(1)
    assert purchase_features([])[PURCHASE_FEATURES.index("gap_s")] == 12.0


def test_classification_metrics_on_a_hand_computed_example() -> None:
    q = ClassificationQuality(threshold=0.3, window=3)
    data = [(True, 0.9), (False, 0.35), (False, 0.2), (True, 0.25), (False, 0.1)]
    for y, p in data:
        q.add(y, p)
    s = q.summary()
    # Predicted positive at >= 0.3: 0.9 (TP), 0.35 (FP); missed 0.25 (FN); TN 0.2, 0.1.
    assert s["accuracy"] == 3 / 5
    assert s["precision"] == 1 / 2
    assert s["recall"] == 1 / 2
    assert s["f1"] == 1 / 2
    # Pairs (pos, neg): 0.9 beats all 3; 0.25 beats 0.2 and 0.1 -> 5 of 6.
    assert s["auc"] == 5 / 6
    assert abs(s["brier"] - (0.01 + 0.1225 + 0.04 + 0.5625 + 0.01) / 5) < 1e-12
    # The window holds the last 3: (F, .2), (T, .25), (F, .1): all predicted negative.
    assert s["window"]["accuracy"] == 2 / 3
    assert s["window"]["recall"] == 0.0
    assert s["window"]["auc"] == 1.0
    assert (s["events"], s["positives"]) == (5, 2)


def test_histogram_auc_matches_the_exact_auc() -> None:
    rng = random.Random(1)
    data = [(rng.random() < 0.05, rng.betavariate(1, 20)) for _ in range(5000)]
    data = [(y, min(0.999, p * (3 if y else 1))) for y, p in data]
    hist = LogitHistogramAUC()
    for y, p in data:
        hist.update(y, p)
    pos = [p for y, p in data if y]
    neg = [p for y, p in data if not y]
    exact = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg) / (len(pos) * len(neg))
    assert 0.6 < exact < 0.95  # a signal, not a degenerate case
    assert abs(hist.get() - exact) < 0.005


def test_the_head_learns_that_carts_lead_to_purchases() -> None:
    rng = random.Random(0)
    head = PurchasePropensity()
    q = ClassificationQuality(threshold=0.5)
    for n in range(4000):
        carted = rng.random() < 0.2
        last = "add_to_cart" if carted else "click"
        x = purchase_features([Interaction("i", "click", 0), Interaction("i", last, 1000)])
        bought = rng.random() < (0.6 if carted else 0.02)
        if n >= 2000:
            q.add(bought, head.predict_one(x))
        head.learn_one(x, bought)
    assert q.summary()["auc"] > 0.8
    assert head.examples == 4000


def test_each_prediction_is_scored_by_the_next_event_refreshes_included(tmp_path: Path) -> None:
    online = OnlineAdjustment(k=10)
    history = [Interaction("a", "click", 1_000)]
    online.observe("u", "a", "click", 1_000)  # a first event: nothing to score
    scored = online.rerank("u", history, Scored([("b", 1.0)], [1.0]))
    assert scored.purchase is not None and 0.0 <= scored.purchase <= 1.0
    assert online.purchase_quality.events == 0
    online.observe("u", "a", "purchase", 2_000)  # a refresh: still scores the prediction
    assert (online.purchase_quality.events, online.purchase_quality.positives) == (1, 1)
    assert online.purchase.examples == 1
    online.observe("u", "c", "click", 3_000)  # no new list since: nothing more to score
    assert online.purchase_quality.events == 1
    online.save(tmp_path)
    restored = OnlineAdjustment(k=10)
    assert restored.restore(tmp_path)
    assert restored.purchase.examples == 1


def test_window_metrics_match_river_rolling_metrics() -> None:
    from river import metrics, utils

    rng = random.Random(7)
    q = ClassificationQuality(threshold=0.3, window=50)
    cm = utils.Rolling(metrics.ConfusionMatrix, window_size=50)
    reference = {
        "accuracy": metrics.Accuracy(cm=cm),
        "precision": metrics.Precision(cm=cm),
        "recall": metrics.Recall(cm=cm),
        "f1": metrics.F1(cm=cm),
    }
    brier = utils.Rolling(metrics.MSE, window_size=50)
    for i in range(400):
        y, p = rng.random() < 0.2, rng.random() ** 2
        q.add(y, p)
        cm.update(y, p >= 0.3)
        brier.update(float(y), p)
        if i % 37 == 0:
            window = q.summary()["window"]
            for name, metric in reference.items():
                assert window[name] == metric.get(), name
            assert abs(window["brier"] - brier.get()) < 1e-12


def test_the_head_learns_every_purchase_and_every_nth_other_event_weighted() -> None:
    head = PurchasePropensity(negatives_every=3)
    learned: list[tuple[bool, float]] = []
    original = head.model.learn_one
    head.model.learn_one = lambda x, y, w=1.0: (learned.append((y, w)), original(x, y, w))  # type: ignore[method-assign]
    x = purchase_features([Interaction("a", "click", 0)])
    labels = [False, True, False, False, True, False, False, False]
    for y in labels:
        head.learn_one(x, y)
    # Negatives 3 and 6 of the six are learned, at weight 3; both purchases at 1.
    assert learned == [(True, 1.0), (False, 3.0), (True, 1.0), (False, 3.0)]
    assert head.examples == len(labels)


def test_scaled_logistic_follows_river_pipeline_step_by_step() -> None:
    from river import linear_model, optim, preprocessing

    river_model = preprocessing.StandardScaler() | linear_model.LogisticRegression(
        optimizer=optim.Adam(0.001), l2=1e-4
    )
    ours = ScaledLogistic(len(PURCHASE_FEATURES), lr=0.001, l2=1e-4)
    rng = random.Random(5)
    kinds = ["click", "add_to_cart", "purchase"]
    for n in range(600):
        history = [
            Interaction(rng.choice("abc"), rng.choice(kinds), t * rng.randint(1, 10**6))
            for t in range(rng.randint(1, 6))
        ]
        x = purchase_features(history)
        named = dict(zip(PURCHASE_FEATURES, x, strict=True))
        y, w = rng.random() < 0.3, rng.choice([1.0, 2.0])
        expected = river_model.predict_proba_one(named)[True]
        assert ours.predict_one(x) == pytest.approx(expected, rel=1e-9, abs=1e-12), n
        scaler, regression = river_model.steps.values()
        scaler.learn_one(named)
        regression.learn_one(scaler.transform_one(named), y, w=w)
        ours.learn_one(x, y, w)
