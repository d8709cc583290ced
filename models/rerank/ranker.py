"""Between the scorer and the publisher: candidates, and the final blend.

Candidates are the scorer's top ``base_k``, the user's most recent other items
(``recent_k``), the items trending now (``trending_k``) and the items trending
now in the category of the item the user is on (``category_k``, when events
name categories), so new and returning items can be recommended before any
retrain. The final score is

``alpha * P_adjuster(engage | x) + (1 - alpha) / (1 + base_rank)``

(the second term is 0 for candidates the scorer did not rank); ``alpha`` is
``STREAMREC_ADJUST_ALPHA`` / ``replay-eval --alpha``. The item the user just
interacted with is not a candidate, unless nothing else is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from models.base import Interaction, Scored
from models.rerank.base import Adjuster, X
from models.rerank.features import ListContext, UserView
from models.rerank.signals import ItemSignals


@dataclass(slots=True)
class Ranked:
    items: list[tuple[str, float]]  # final list, best first
    pool: list[str]  # every candidate
    xs: list[X]  # the adjuster's description of each, in pool order


class Candidates(NamedTuple):
    """A list's candidates besides the scorer's, from the history and the signals."""

    user: UserView
    recent: list[str]  # the user's most recent other items
    trending: list[str]  # trending now
    category: str | None  # of the user's current item
    in_category: list[str]  # trending now in that category, the current item left out


class Ranker:
    def __init__(
        self,
        signals: ItemSignals,
        alpha: float = 1.0,
        base_k: int = 10,
        recent_k: int = 10,
        trending_k: int = 3,
        category_k: int = 10,
    ) -> None:
        self.signals = signals
        self.alpha = alpha
        self.base_k = base_k
        self.recent_k = recent_k
        self.trending_k = trending_k
        self.category_k = category_k

    def candidates(self, history: Sequence[Interaction]) -> Candidates:
        """What a list's candidates are drawn from besides the scorer's answer: read
        from the history and the live signals only, so it can be gathered before the
        answer arrives (while a served model scores)."""
        user = UserView.of(history)
        category = self.signals.category(user.current_item)
        in_category = [
            i
            for i in self.signals.trending_in(category, self.category_k + 1)
            if i != user.current_item
        ][: self.category_k]
        trending = self.signals.trending(self.trending_k)
        return Candidates(user, user.recent_items(self.recent_k), trending, category, in_category)

    def rank(
        self,
        adjuster: Adjuster,
        history: Sequence[Interaction],
        base: Scored,
        k: int,
        gathered: Candidates | None = None,
    ) -> Ranked:
        """The final list (``gathered``: :meth:`candidates` of ``history``, if already
        taken)."""
        c = gathered if gathered is not None else self.candidates(history)
        user, in_category = c.user, c.in_category
        rank_of = {item: r for r, (item, _) in enumerate(base.items[: self.base_k])}
        # The item just interacted with is not a candidate: showing it again is a
        # "refresh", which recommends nothing new (and the protocol skips it). Only
        # when nothing else is known (the first event ever) is it kept.
        pool = dict.fromkeys([*rank_of, *c.recent, *c.trending, *in_category])
        if len(pool) > 1 or user.current_item not in pool:
            pool.pop(user.current_item, None)  # type: ignore[arg-type]
        items = list(pool)
        category_rank = {item: r for r, item in enumerate(in_category)}
        ctx = ListContext(
            user, self.signals, rank_of, set(c.trending), base, c.category, category_rank
        )
        xs = adjuster.describe(items, ctx)
        probs = adjuster.predict_many(xs)
        a = self.alpha
        if a == 1.0:
            scored = list(zip(items, probs, strict=True))
        else:
            base_part = [1.0 / (1 + r) if (r := rank_of.get(i)) is not None else 0.0 for i in items]
            scored = [
                (item, a * p + (1 - a) * b)
                for item, p, b in zip(items, probs, base_part, strict=True)
            ]
        scored.sort(key=itemgetter(1), reverse=True)  # stable: ties keep pool order
        return Ranked(scored[:k], items, xs)
