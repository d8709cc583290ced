"""Features of one (user, candidate item) pair, as a flat dict for river.

Every feature is cheap to compute from what the worker already holds: the
scorer's answer, the user's recent history, and live item signals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from models.base import Interaction, Scored
from stream_app.adjust.signals import ItemSignals

TYPE_WEIGHT = {"view": 0.5, "click": 1.0, "add_to_cart": 2.0, "purchase": 4.0}
SESSION_GAP_MS = 30 * 60 * 1000


@dataclass(slots=True)
class UserView:
    """What the features need of a user's history (newest last), computed once per list."""

    now: int
    current_item: str | None
    seen: dict[str, tuple[int, int, float, int]]  # item -> (recency rank, last ts, type, count)
    type_mix: dict[str, float]
    session_len: int
    history_len: int

    @classmethod
    def of(cls, history: Sequence[Interaction]) -> UserView:
        now = history[-1].ts if history else 0
        seen: dict[str, tuple[int, int, float, int]] = {}
        rank = 0
        for e in reversed(history):
            w = TYPE_WEIGHT.get(e.event_type, 1.0)
            if e.item_id in seen:
                r, t, tw, c = seen[e.item_id]
                seen[e.item_id] = (r, t, max(tw, w), c + 1)
            else:
                seen[e.item_id] = (rank, e.ts, w, 1)
                rank += 1
        n = len(history) or 1
        mix = {t: sum(e.event_type == t for e in history) / n for t in ("click", "add_to_cart")}
        mix["purchase"] = sum(e.event_type == "purchase" for e in history) / n
        session = 0
        prev = None
        for e in reversed(history):
            if prev is not None and prev - e.ts > SESSION_GAP_MS:
                break
            session += 1
            prev = e.ts
        return cls(
            now,
            history[-1].item_id if history else None,
            seen,
            mix,
            session,
            len(history),
        )

    def recent_items(self, n: int) -> list[str]:
        """The user's ``n`` most recent distinct items, not counting the current one."""
        ordered = sorted(self.seen, key=lambda i: self.seen[i][0])
        return [i for i in ordered if i != self.current_item][:n]


def influence_concentration(scored: Scored) -> float:
    return max(scored.influences) if scored.influences else 0.0


def features(
    item: str,
    base_rank: int | None,
    base_score: float,
    top_score: float,
    trending: bool,
    user: UserView,
    signals: ItemSignals,
    concentration: float,
) -> dict[str, float]:
    pop_short, pop_long = [*signals.popularity(item, user.now), 0.0, 0.0][:2]
    last = signals.last_seen(item)
    mine = user.seen.get(item)
    x = {
        "base_in": 1.0 if base_rank is not None else 0.0,
        "base_rrank": 1.0 / (1 + base_rank) if base_rank is not None else 0.0,
        "base_score": base_score / top_score if top_score > 0 else 0.0,
        "trending": 1.0 if trending else 0.0,
        "pop_short": math.log1p(pop_short),
        "pop_long": math.log1p(pop_long),
        "item_idle_s": math.log1p(max(0, user.now - last) / 1000) if last is not None else 12.0,
        "mine": 1.0 if mine else 0.0,
        "mine_rrank": 1.0 / (1 + mine[0]) if mine else 0.0,
        "mine_idle_s": math.log1p(max(0, user.now - mine[1]) / 1000) if mine else 12.0,
        "mine_type": mine[2] if mine else 0.0,
        "mine_count": math.log1p(mine[3]) if mine else 0.0,
        "is_current": 1.0 if item == user.current_item else 0.0,
        "mix_click": user.type_mix["click"],
        "mix_cart": user.type_mix["add_to_cart"],
        "mix_purchase": user.type_mix["purchase"],
        "session_len": math.log1p(user.session_len),
        "history_len": math.log1p(user.history_len),
        "concentration": concentration,
    }
    return x
