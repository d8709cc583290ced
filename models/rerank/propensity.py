"""The purchase-propensity head: P(the user's next event is a purchase), learned online.

After each of a user's events the head predicts whether the user's *next* event
will be a purchase, from the user's history alone (what they just did, items
carted and not bought, the event-type mix, session length, pace). The next
event labels that prediction: it is first scored (prequential classification
quality, :class:`models.rerank.quality.ClassificationQuality`), then learned
from. It works with every scorer: the same river model as the adjuster
(``StandardScaler | LogisticRegression``), on its own features.

>>> from models.base import Interaction
>>> head = PurchasePropensity()
>>> carted = [Interaction("a", "click", 0), Interaction("a", "add_to_cart", 1_000)]
>>> browsing = [Interaction("a", "click", 0), Interaction("b", "click", 1_000)]
>>> for _ in range(300):
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
from models.rerank.logreg import default_model

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


def purchase_features(history: Sequence[Interaction]) -> dict[str, float]:
    """Features of a user's history (newest last) for the purchase head, in
    :data:`PURCHASE_FEATURES` order."""
    n = len(history)
    counts = {"click": 0, "add_to_cart": 0, "purchase": 0}
    carted: set[str] = set()
    bought: set[str] = set()
    for e in history:
        if e.event_type in counts:
            counts[e.event_type] += 1
        if e.event_type == "add_to_cart":
            carted.add(e.item_id)
        elif e.event_type == "purchase":
            bought.add(e.item_id)
    session, prev = 0, None
    for e in reversed(history):
        if prev is not None and prev - e.ts > SESSION_GAP_MS:
            break
        session += 1
        prev = e.ts
    last = history[-1] if history else None
    gap_ms = history[-1].ts - history[-2].ts if n > 1 else None
    open_carts = carted - bought
    return {
        "last_cart": 1.0 if last and last.event_type == "add_to_cart" else 0.0,
        "last_purchase": 1.0 if last and last.event_type == "purchase" else 0.0,
        "last_click": 1.0 if last and last.event_type == "click" else 0.0,
        "current_carted": 1.0 if last and last.item_id in open_carts else 0.0,
        "open_carts": math.log1p(len(open_carts)),
        "mix_click": counts["click"] / (n or 1),
        "mix_cart": counts["add_to_cart"] / (n or 1),
        "mix_purchase": counts["purchase"] / (n or 1),
        "session_len": math.log1p(session),
        "history_len": math.log1p(n),
        "gap_s": math.log1p(max(0, gap_ms) / 1000) if gap_ms is not None else 12.0,
    }


class PurchasePropensity:
    name = "river-logreg-purchase"

    def __init__(self) -> None:
        # Adam(0.001): of the river models measured on Taobao and REES46 (see
        # docs/reranking.md) the best logistic regression; ARF scores better but costs 10x.
        self.model = default_model(lr=0.001)
        self.examples = 0

    def learn_one(self, x: dict[str, float], y: bool) -> None:
        self.model.learn_one(x, y)
        self.examples += 1

    def predict_one(self, x: dict[str, float]) -> float:
        """P(the next event is a purchase)."""
        return float(self.model.predict_proba_one(x).get(True, 0.0))
