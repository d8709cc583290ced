"""The worker's HTTP views: interactive queries of user state.

``GET /state/<user_id>/`` is answered by the worker that owns the user's
partition: any worker receiving it forwards it there (Faust's table routing,
the way Kafka Streams' interactive queries work), so one URL serves a group of
any size. Ownership follows the raw user id, exactly as the input topic is
partitioned; the owner then looks up the (possibly pseudonymous) state key.

While a rebalance moves partitions, or the owner is still restoring them from
the changelog, the answer is ``503`` (retry): a half-restored table would show
state that is merely old (Kafka Streams' interactive queries refuse likewise).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import faust
from faust.web import Request, Response, View

from stream_app.routing import partition_for
from stream_app.settings import Settings
from stream_app.state import rocksdb
from stream_app.state.user_state import UserState


def state_document(
    user_id: str,
    users: Mapping[bytes, bytes],
    settings: Settings,
    pseudonymize: Callable[[str], str] | None,
) -> dict[str, Any]:
    """What ``streamrec state`` shows for one user."""
    key = pseudonymize(user_id) if pseudonymize else user_id
    state = UserState.decode(users.get(key.encode()))
    return {
        "user_id": key,
        "partition": partition_for(user_id.encode(), settings.partitions),
        "last_offset": state.last_offset,
        "events": [
            {"item_id": r.item_id, "event_type": r.event_type, "ts": r.ts, "event_id": r.event_id}
            for r in state.records
        ],
    }


def register_views(
    app: faust.App,
    users: faust.Table,
    settings: Settings,
    pseudonymize: Callable[[str], str] | None,
    local_partitions: Callable[[], list[int]],
    caches: Callable[[], dict[str, int]] | None = None,
) -> None:
    """``local_partitions``: the input partitions this worker actively owns now;
    ``caches``: entries held per in-memory cache (:mod:`stream_app.caches`)."""

    @app.page("/tables/")
    async def tables(web: Any, request: Request) -> Response:
        """Keys held locally per table (a full scan: for soak tests, not dashboards), and
        RocksDB's shared cache in bytes (``block_cache`` includes the memtables charged
        to it; zero with the memory store), and the in-memory caches' entries."""
        sizes = {t.name: sum(1 for _ in t) for t in app.tables.values()}
        held = caches() if caches is not None else {}
        return web.json({"tables": sizes, "rocksdb_bytes": rocksdb.memory_usage(), "caches": held})

    @app.page("/state/{user_id}/")
    class UserStateView(View):
        # Faust's types omit the match_info keyword (user_id) that the route passes.
        @app.table_route(table=users, match_info="user_id")  # type: ignore[arg-type]
        async def get(self, request: Request, user_id: str) -> Response:
            partition = partition_for(user_id.encode(), settings.partitions)
            if app.rebalancing or partition not in local_partitions():
                reason = f"partition {partition} is being rebalanced or restored; retry"
                return self.json({"error": reason}, status=503)
            doc = state_document(user_id, users, settings, pseudonymize)
            doc["served_by"] = str(app.conf.canonical_url)
            return self.json(doc)
