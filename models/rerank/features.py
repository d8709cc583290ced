"""What the adjusters read of one list: the user's recent history, the scorer's
answer, and live item signals, gathered once per list (:class:`ListContext`).

Every feature is cheap to compute from what the worker already holds. The
logistic adjuster reads them all (:func:`features`); the slot adjuster only a
few ranks and flags.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from models.base import Interaction, Scored
from models.rerank.signals import ItemSignals

TYPE_WEIGHT = {"view": 0.5, "click": 1.0, "add_to_cart": 2.0, "purchase": 4.0}
SESSION_GAP_MS = 30 * 60 * 1000
FEATURES = (
    "base_in",
    "base_rrank",
    "base_score",
    "trending",
    "pop_short",
    "pop_long",
    "item_idle_s",
    "mine",
    "mine_rrank",
    "mine_idle_s",
    "mine_type",
    "mine_count",
    "is_current",
    "mix_click",
    "mix_cart",
    "mix_purchase",
    "session_len",
    "history_len",
    "concentration",
)


@dataclass(slots=True)
class UserView:
    """A user's history (newest last) as the features need it, computed once per list."""

    history: Sequence[Interaction]
    now: int
    current_item: str | None
    seen: dict[str, tuple[int, int, float, int]]  # item -> (recency rank, last ts, type, count)
    order: list[str]  # distinct items, most recent first

    @classmethod
    def of(cls, history: Sequence[Interaction]) -> UserView:
        seen: dict[str, tuple[int, int, float, int]] = {}
        order: list[str] = []
        for e in reversed(history):
            w = TYPE_WEIGHT.get(e.event_type, 1.0)
            old = seen.get(e.item_id)
            if old is None:
                seen[e.item_id] = (len(order), e.ts, w, 1)
                order.append(e.item_id)
            else:
                seen[e.item_id] = (old[0], old[1], max(old[2], w), old[3] + 1)
        now = history[-1].ts if history else 0
        current = history[-1].item_id if history else None
        return cls(history, now, current, seen, order)

    def recent_items(self, n: int) -> list[str]:
        """The user's ``n`` most recent distinct items, not counting the current one."""
        return [i for i in self.order[: n + 1] if i != self.current_item][:n]

    def type_mix(self) -> dict[str, float]:
        n = len(self.history) or 1
        kinds = [e.event_type for e in self.history]
        return {t: kinds.count(t) / n for t in ("click", "add_to_cart", "purchase")}

    def session_len(self) -> int:
        """Events since the last gap of more than 30 minutes."""
        session, prev = 0, None
        for e in reversed(self.history):
            if prev is not None and prev - e.ts > SESSION_GAP_MS:
                break
            session += 1
            prev = e.ts
        return session


def recent_items(history: Sequence[Interaction], n: int) -> list[str]:
    """:meth:`UserView.recent_items` without building the view."""
    current = history[-1].item_id if history else None
    out: dict[str, None] = {}
    for e in reversed(history):
        if e.item_id != current:
            out[e.item_id] = None
            if len(out) == n:
                break
    return list(out)


@dataclass(slots=True)
class ListContext:
    """Everything an adjuster may read to describe the candidates of one list."""

    user: UserView
    signals: ItemSignals
    rank_of: dict[str, int]  # the scorer's rank of each item it returned (its top)
    trending: set[str]
    base: Scored
    category: str | None = None  # of the user's current item, if known
    category_rank: dict[str, int] = field(default_factory=dict)  # trending in it, rank

    def categories(self) -> dict[str, int]:
        """How many of the user's events fall in each (known) category."""
        out: dict[str, int] = {}
        of = self.signals.catalogue.get
        for e in self.user.history:
            c = of(e.item_id)
            if c is not None:
                out[c] = out.get(c, 0) + 1
        return out

    @property
    def top_score(self) -> float:
        return self.base.items[0][1] if self.base.items else 0.0


def influence_concentration(scored: Scored) -> float:
    return max(scored.influences) if scored.influences else 0.0


def features(items: Sequence[str], ctx: ListContext) -> list[tuple[float, ...]]:
    """Every candidate's features, in :data:`FEATURES` order."""
    user, signals = ctx.user, ctx.signals
    top = ctx.top_score
    score_of = dict(ctx.base.items[: len(ctx.rank_of)])
    concentration = influence_concentration(ctx.base)
    mix = user.type_mix()
    shared = (
        mix["click"],
        mix["add_to_cart"],
        mix["purchase"],
        math.log1p(user.session_len()),
        math.log1p(len(user.history)),
        concentration,
    )
    out: list[tuple[float, ...]] = []
    for item in items:
        r = ctx.rank_of.get(item)
        pop_short, pop_long = [*signals.popularity(item, user.now), 0.0, 0.0][:2]
        last = signals.last_seen(item)
        mine = user.seen.get(item)
        out.append(
            (
                1.0 if r is not None else 0.0,
                1.0 / (1 + r) if r is not None else 0.0,
                score_of.get(item, 0.0) / top if top > 0 else 0.0,
                1.0 if item in ctx.trending else 0.0,
                math.log1p(pop_short),
                math.log1p(pop_long),
                math.log1p(max(0, user.now - last) / 1000) if last is not None else 12.0,
                1.0 if mine else 0.0,
                1.0 / (1 + mine[0]) if mine else 0.0,
                math.log1p(max(0, user.now - mine[1]) / 1000) if mine else 12.0,
                mine[2] if mine else 0.0,
                math.log1p(mine[3]) if mine else 0.0,
                1.0 if item == user.current_item else 0.0,
                *shared,
            )
        )
    return out
