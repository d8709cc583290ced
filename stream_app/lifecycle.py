"""What the worker does besides its agents: handlers of Faust's rebalance signals,
periodic work (timers), and the adjuster's checkpoints.

Each is a named method of a small class whose ``register`` hands them to the app.
mode's signal types want handlers that take ``*args`` and a ``signal`` keyword;
Faust calls them with keywords only, hence the ``arg-type`` ignores on ``connect``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import faust

from stream_app import monitoring
from stream_app.adjustment import OnlineAdjustment
from stream_app.control import sweep_headers
from stream_app.served_model import ModelServer
from stream_app.settings import Settings
from stream_app.state.decoded import Decoded
from stream_app.state.markov_store import TableTransitionStore
from stream_app.state.user_state import UserState
from stream_app.summary import Summary, local_users
from stream_app.topology import Topology

log = logging.getLogger(__name__)


class Rebalance:
    """The worker's handlers of partitions moving between workers."""

    def __init__(
        self,
        users: faust.Table,
        states: Decoded[UserState],
        transitions: TableTransitionStore,
        adjust: OnlineAdjustment | None,
    ) -> None:
        self.users = users
        self.states = states
        self.transitions = transitions
        self.adjust = adjust
        self._assigned_at: float | None = None  # when the assignment being restored arrived

    def register(self, app: faust.App) -> None:
        app.on_partitions_assigned.connect(self.on_partitions_assigned)  # type: ignore[arg-type]
        self.users.on_recover(self.on_tables_recovered)
        app.on_partitions_revoked.connect(self.on_partitions_revoked)  # type: ignore[arg-type]

    async def on_partitions_assigned(self, sender: Any, assigned: Any, **kwargs: Any) -> None:
        self.states.invalidate()
        self.transitions.invalidate()
        if self.adjust is not None:
            self.adjust.feedback.clear()  # lists of users that moved: the table has them
        self._assigned_at = time.monotonic()

    async def on_tables_recovered(self) -> None:
        """Faust calls this once the tables hold their changelogs' data again."""
        if self._assigned_at is not None:
            monitoring.STATE_RESTORE.observe(time.monotonic() - self._assigned_at)
            self._assigned_at = None
        # One count per restore; ingest and sweeps keep it current from there.
        monitoring.STATE_USERS.set(len(self.users))

    async def on_partitions_revoked(self, sender: Any, revoked: Any, **kwargs: Any) -> None:
        self.states.invalidate()
        self.transitions.invalidate()


class Timers:
    """The worker's periodic work; ``server``: a served model's, to reload and close."""

    def __init__(self, settings: Settings, topology: Topology, server: ModelServer | None) -> None:
        self.settings = settings
        self.topology = topology
        self.server = server
        self.summary = (
            Summary(topology.local_partitions, lambda: local_users(topology.users))
            if settings.log_summary_s > 0
            else None
        )
        self._lag_reported: set[str] = set()

    def register(self, app: faust.App) -> None:
        s = self.settings
        app.timer(s.sweep_interval_s)(self.send_sweeps)
        if self.summary is not None:
            app.timer(s.log_summary_s)(self.log_summary)
        if self.server is not None:
            if s.model_reload_s > 0:
                app.timer(s.model_reload_s)(self.server.reload_if_changed)
            app.on_before_shutdown.connect(self.close_model)  # type: ignore[arg-type]
        app.timer(s.metrics_interval_s)(self.sample_lag)

    async def send_sweeps(self) -> None:
        """Ask each owned partition to forget its idle users (see stream_app.control)."""
        events = self.topology.events
        for partition in self.topology.local_partitions():
            await events.send(value=b"", partition=partition, headers=sweep_headers())

    async def log_summary(self) -> None:
        assert self.summary is not None
        self.summary.log()

    async def sample_lag(self) -> None:
        app, topic = self.topology.app, self.settings.input_topic
        await sample_consumer_lag(app, topic, self._lag_reported)

    async def close_model(self, sender: Any, **kwargs: Any) -> None:
        assert self.server is not None
        await self.server.close()


class AdjusterCheckpoint:
    """The adjuster's state in ``directory``: restored at start, saved periodically
    and before the worker shuts down."""

    def __init__(self, adjust: OnlineAdjustment, directory: Path) -> None:
        self.adjust = adjust
        self.directory = directory

    def register(self, app: faust.App, interval_s: float) -> None:
        self.adjust.restore(self.directory)
        app.timer(interval_s)(self.save)
        app.on_before_shutdown.connect(self.save_before_shutdown)  # type: ignore[arg-type]

    async def save(self) -> None:
        self.adjust.save(self.directory)

    async def save_before_shutdown(self, sender: Any, **kwargs: Any) -> None:
        self.adjust.save(self.directory)


async def sample_consumer_lag(app: faust.App, topic: str, reported: set[str]) -> None:
    """``streamrec_consumer_lag_messages`` for each input partition this worker owns.

    Lag is the partition's end offset (asked from the broker) minus the offset
    this worker last committed (Faust's own record: the next offset to read).
    ``reported`` holds the partitions exported so far, so that a partition moved
    to another worker stops being reported here (its new owner reports it).
    """
    # Faust's record of committed offsets; a partition just taken over has none
    # until its restore ends, and is skipped until then (not counted from offset 0).
    committed = app.consumer._committed_offset  # type: ignore[attr-defined]
    tps = [
        tp
        for tp in app.assignor.assigned_actives()
        if tp.topic == topic and committed.get(tp) is not None
    ]
    try:
        ends = await app.consumer.highwaters(*tps) if tps else {}
    except Exception as exc:  # a rebalance or a broker hiccup: try again next time
        log.debug("consumer lag not sampled: %r", exc)
        return
    owned = set()
    for tp in tps:
        # Read again: a rebalance during the await above may have dropped the partition.
        end, position = ends.get(tp), committed.get(tp)
        if end is None or position is None:
            continue
        monitoring.CONSUMER_LAG.labels(str(tp.partition)).set(max(0, end - position))
        owned.add(str(tp.partition))
    for partition in reported - owned:
        monitoring.CONSUMER_LAG.remove(partition)
    reported.clear()
    reported.update(owned)
