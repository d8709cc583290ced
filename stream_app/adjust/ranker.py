"""Between the scorer and the publisher: candidates, features, and the final blend.

Candidates are the scorer's top ``base_k``, the user's most recent other items
(``recent_k``), and the items trending now (``trending_k``), so new and
returning items can be recommended before any retrain. The final score is

``alpha * P_adjuster(engage | features) + (1 - alpha) / (1 + base_rank)``

(the second term is 0 for candidates the scorer did not rank); ``alpha`` is
``STREAMREC_ADJUST_ALPHA`` / ``replay-eval --alpha`` (0.85). The item the user just
interacted with is not a candidate, unless nothing else is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.base import Interaction, Scored
from stream_app.adjust.adjuster import Adjuster
from stream_app.adjust.features import UserView, features, influence_concentration
from stream_app.adjust.signals import ItemSignals
from stream_app.adjust.slots import SlotAdjuster


@dataclass(slots=True)
class Ranked:
    items: list[tuple[str, float]]  # final list, best first
    candidates: list[tuple[str, dict[str, float]]]  # every candidate with its features


class Ranker:
    def __init__(
        self,
        adjuster: Adjuster | SlotAdjuster,
        signals: ItemSignals,
        alpha: float = 0.85,
        base_k: int = 10,
        recent_k: int = 10,
        trending_k: int = 3,
    ) -> None:
        self.adjuster = adjuster
        self.signals = signals
        self.alpha = alpha
        self.base_k = base_k
        self.recent_k = recent_k
        self.trending_k = trending_k

    def rank(self, history: Sequence[Interaction], base: Scored, k: int) -> Ranked:
        user = UserView.of(history)
        top = base.items[0][1] if base.items else 0.0
        rank_of = {item: r for r, (item, _) in enumerate(base.items[: self.base_k])}
        score_of = dict(base.items[: self.base_k])
        trending = self.signals.trending(self.trending_k)
        pool = list(rank_of) + user.recent_items(self.recent_k) + trending
        concentration = influence_concentration(base)
        trending_set = set(trending)
        candidates: list[tuple[str, dict[str, float]]] = []
        base_parts: list[float] = []
        # The item just interacted with is not a candidate: showing it again is a
        # "refresh", which recommends nothing new (and the protocol skips it). Only
        # when nothing else is known (the first event ever) is it kept.
        pool = [i for i in pool if i != user.current_item] or pool
        for item in dict.fromkeys(pool):  # first source wins, order kept
            r = rank_of.get(item)
            x = features(
                item,
                r,
                score_of.get(item, 0.0),
                top,
                item in trending_set,
                user,
                self.signals,
                concentration,
            )
            base_parts.append(1.0 / (1 + r) if r is not None else 0.0)
            candidates.append((item, x))
        probs = self.adjuster.predict_many([x for _, x in candidates])
        scored = [
            (item, self.alpha * p + (1 - self.alpha) * b)
            for (item, _), p, b in zip(candidates, probs, base_parts, strict=True)
        ]
        scored.sort(key=lambda t: -t[1])
        return Ranked(scored[:k], candidates)
