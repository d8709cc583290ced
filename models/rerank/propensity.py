"""The purchase-propensity head: P(the user's next event is a purchase), learned online.

After each of a user's events the head predicts whether the user's *next* event
will be a purchase, from the user's history alone (what they just did, items
carted and not bought, the event-type mix, session length, pace). The next
event labels that prediction: it is first scored (prequential classification
quality, :class:`models.rerank.quality.ClassificationQuality`), then learned
from. It works with every scorer: a logistic regression on scaled features
(:class:`~models.rerank.online_logistic.ScaledLogistic`, the arithmetic of
river's ``StandardScaler | LogisticRegression``), on its own features.

>>> from models.base import Interaction
>>> head = PurchasePropensity()
>>> carted = [Interaction("a", "click", 0), Interaction("a", "add_to_cart", 1_000)]
>>> browsing = [Interaction("a", "click", 0), Interaction("b", "click", 1_000)]
>>> for _ in range(600):
...     head.learn_one(purchase_features(carted), True)
...     head.learn_one(purchase_features(browsing), False)
>>> head.predict_one(purchase_features(carted)) > 0.9 > 0.1 > head.predict_one(
...     purchase_features(browsing))
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from models.base import Interaction
from models.rerank.features import SESSION_GAP_MS
from models.rerank.online_logistic import ScaledLogistic

PURCHASE_FEATURES = (
    "last_cart",
    "last_purchase",
    "last_click",
    "current_carted",
    "open_carts",
    "mix_click",
    "mix_cart",
    "mix_purchase",
    "session_len",
    "history_len",
    "gap_s",
)


def purchase_features(history: Sequence[Interaction]) -> tuple[float, ...]:
    """Features of a user's history (newest last) for the purchase head, in
    :data:`PURCHASE_FEATURES` order."""
    n = len(history)
    clicks = carts = purchases = 0
    carted: set[str] = set()
    bought: set[str] = set()
    for e in history:  # one pass, plain counters: this runs for every published list
        kind = e.event_type
        if kind == "click":
            clicks += 1
        elif kind == "add_to_cart":
            carts += 1
            carted.add(e.item_id)
        elif kind == "purchase":
            purchases += 1
            bought.add(e.item_id)
    session, prev = 0, None
    for e in reversed(history):
        if prev is not None and prev - e.ts > SESSION_GAP_MS:
            break
        session += 1
        prev = e.ts
    last = history[-1] if history else None
    last_kind = last.event_type if last else None
    gap_ms = history[-1].ts - history[-2].ts if n > 1 else None
    open_carts = carted - bought if carted else carted
    per = n or 1
    return (
        1.0 if last_kind == "add_to_cart" else 0.0,
        1.0 if last_kind == "purchase" else 0.0,
        1.0 if last_kind == "click" else 0.0,
        1.0 if last and last.item_id in open_carts else 0.0,
        math.log1p(len(open_carts)),
        clicks / per,
        carts / per,
        purchases / per,
        math.log1p(session),
        math.log1p(n),
        math.log1p(max(0, gap_ms) / 1000) if gap_ms is not None else 12.0,
    )


class PurchasePropensity:
    """``negatives_every``: learn every purchase but only every n-th other event, at
    weight n (negative downsampling with importance weights: the expected gradient,
    and so the calibration, stay those of learning every event; purchases are a few
    percent of events and the update is most of the head's cost)."""

    name = "logreg-purchase"

    def __init__(self, negatives_every: int = 2) -> None:
        # Adam(0.001) on scaled features: of the river models measured on Taobao and
        # REES46 (see docs/reranking.md) the best logistic regression; ARF scores
        # better but costs 10x. ScaledLogistic is that pipeline's arithmetic, cheaper.
        self.model = ScaledLogistic(len(PURCHASE_FEATURES), lr=0.001, l2=1e-4)
        self.negatives_every = negatives_every
        self.examples = 0  # labelled events seen, learned from or skipped
        self._negatives = 0

    def learn_one(self, x: Sequence[float], y: bool) -> None:
        self.examples += 1
        if y:
            self.model.learn_one(x, True)
            return
        self._negatives += 1
        if self._negatives % self.negatives_every == 0:
            self.model.learn_one(x, False, float(self.negatives_every))

    def predict_one(self, x: Sequence[float]) -> float:
        """P(the next event is a purchase)."""
        return self.model.predict_one(x)
