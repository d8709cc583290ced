"""How full the worker's in-memory caches are, for soak runs (``GET /tables/``).

Each structure is bounded (docs/operations/capacity.md, memory bounds); these
counts show whether a bound is reached and held, or whether something grows.
Read without locks from the event loop's thread, as the web view runs there.
"""

from __future__ import annotations

from typing import Any

from stream_app.adjustment import OnlineAdjustment
from stream_app.state.decoded import Decoded
from stream_app.state.markov_store import TableTransitionStore
from stream_app.state.user_state import UserState


def _size(obj: Any, attr: str) -> int:
    """``len(obj.attr)``, 0 where the structure is absent (a renamed field must not
    break the view, only zero its line)."""
    value = getattr(obj, attr, None)
    try:
        return len(value) if value is not None else 0
    except TypeError:
        return 0


def cache_sizes(
    transitions: TableTransitionStore, states: Decoded[UserState], adjust: OnlineAdjustment | None
) -> dict[str, int]:
    """Entries held per cache: the Markov read caches, the users' decoded states, and
    the adjuster's open lists, last lists and item signals (absent with the adjuster off)."""
    sizes = {
        "markov_merged_successors": _size(transitions, "_merged"),
        "markov_decoded_rows": _size(transitions.rows, "values"),
        "users_decoded_states": _size(states, "values"),
    }
    if adjust is not None:
        sizes["adjuster_open_lists_users"] = len(adjust.feedback)
        sizes["adjuster_last_lists_users"] = _size(adjust, "_last")
        sizes["adjuster_item_signals"] = _size(adjust.signals, "_counts")
    return sizes
