"""The single entry point: wires topics, tables and the agent into a Faust app.

``create_app(settings)`` returns the app; ``run_worker(settings)`` runs it.
Faust 0.15.3 is patched for the recovery gap (upstream #596) by
:mod:`stream_app.compat`, applied in ``create_app``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from functools import partial
from typing import Any

import faust
import prometheus_client
from aiokafka.admin import NewTopic

from models.base import Scorer
from models.markov import MarkovScorer
from stream_app import compat, logs, monitoring
from stream_app.adjustment import OnlineAdjustment
from stream_app.control import forget_headers, sweep_headers
from stream_app.erasure import ForgetRequest, InvalidRequest
from stream_app.kafka.admin import ensure_topics
from stream_app.kafka.security import faust_credentials
from stream_app.outbox import Outbox
from stream_app.outgoing import Outgoing
from stream_app.processor import Processor, ScoreRequest, Source
from stream_app.routing import partition_for
from stream_app.served_model import ModelServer
from stream_app.settings import Settings
from stream_app.state import rocksdb
from stream_app.state.markov_store import TableTransitionStore
from stream_app.summary import Summary, local_users
from stream_app.web import register_views

log = logging.getLogger(__name__)

TABLES = ("users", "items", "feedback")


def faust_settings(settings: Settings) -> dict[str, Any]:
    store = f"{rocksdb.SCHEME}://" if settings.store == "rocksdb" else "memory://"
    return {
        "broker": f"kafka://{settings.bootstrap}",
        "broker_credentials": faust_credentials(settings),
        "store": store,
        "datadir": str(settings.data_dir / settings.app_id),
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "key_serializer": "raw",
        "value_serializer": "raw",
        # Small timeouts: a worker joins, and a dead one is noticed, within seconds.
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": settings.heartbeat_interval_s,
        "broker_request_timeout": max(40.0, settings.session_timeout_s * 4),
        "consumer_auto_offset_reset": "earliest",
        # Big enough to forward a huge (rejected) event's original bytes to the DLQ.
        "producer_max_request_size": settings.dlq_max_bytes + 64 * 1024,
        "broker_commit_interval": settings.commit_interval_s,
        "producer_acks": -1,
        "producer_linger_ms": settings.producer_linger_ms,
        "web_host": settings.web_host,
        "web_port": settings.web_port,
        "web_bind": settings.web_host,
        "web_in_thread": False,
    }


def rocksdb_options(settings: Settings) -> dict[str, int]:
    """Faust's defaults (per partition and table: 64 MiB x 3 memtables, a 2 GiB block
    cache) let a worker's memory grow for hours; one shared pool bounds it
    (:mod:`stream_app.state.rocksdb`)."""
    mib = rocksdb.MIB
    return {
        "write_buffer_size": settings.rocksdb_write_buffer_mb * mib,
        "max_write_buffer_number": 2,
        "memory_bytes": settings.rocksdb_memory_mb * mib,
        "memtables_bytes": settings.rocksdb_memtables_mb * mib,
    }


def create_app(settings: Settings) -> faust.App:
    compat.apply()
    app = faust.App(settings.app_id, **faust_settings(settings))
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    events = app.topic(settings.input_topic, partitions=settings.partitions, **raw)
    topics = {
        name: app.topic(name, partitions=settings.partitions, **raw)
        for name in (settings.input_topic, settings.output_topic, settings.dlq_topic)
    }
    topics[settings.audit_topic] = app.topic(settings.audit_topic, partitions=1, **raw)
    control = app.topic(settings.control_topic, partitions=settings.partitions, **raw)
    table = {
        "partitions": settings.partitions,
        "key_type": bytes,
        "value_type": bytes,
        "options": rocksdb_options(settings),
    }
    users = app.Table("users", **table)
    items = app.Table("items", **table)
    # The adjuster's open lists awaiting their label, keyed by user like `users`.
    feedback = app.Table("feedback", **table)
    declared = {t.name for t in internal_topic_specs(settings)}
    if {t.changelog_topic_name for t in app.tables.values()} - declared:
        raise RuntimeError("a table's changelog is missing from internal_topic_specs")

    def local_partitions() -> list[int]:
        return sorted(
            tp.partition
            for tp in app.assignor.assigned_actives()
            if tp.topic == settings.input_topic
        )

    transitions = TableTransitionStore(items, local_partitions, settings.markov_max_successors)
    markov = MarkovScorer(
        transitions,
        window=settings.markov_window,
        decay=settings.markov_decay,
        popularity_weight=settings.popularity_weight,
    )
    # A trained model when one is configured; the online Markov model otherwise
    # (which then also learns from every event).
    neural = settings.model_dir is not None
    scorer: Scorer = load_model(settings) if neural else markov
    monitoring.export_model(scorer)
    # The adjuster learns and re-ranks on the event loop (Processor.ingest/render),
    # for both paths; only the model's scoring runs on the batcher's thread.
    adjust = (
        OnlineAdjustment(
            settings.top_k,
            settings.adjust_alpha,
            purchase_threshold=settings.purchase_threshold,
            feedback_store=feedback,
            model=settings.adjust_model,
        )
        if settings.adjust
        else None
    )
    processor = Processor(
        settings, users, scorer, learner=None if neural else markov, adjust=adjust
    )
    adjust_dir = settings.data_dir / settings.app_id / "adjuster"
    if adjust is not None:
        adjust.restore(adjust_dir)

        @app.timer(settings.adjust_checkpoint_s)
        async def _checkpoint_adjuster() -> None:
            adjust.save(adjust_dir)

        @app.on_before_shutdown.connect
        async def _save_adjuster(sender: Any, **kwargs: Any) -> None:
            adjust.save(adjust_dir)

    server = ModelServer(settings, processor, lambda: load_model(settings)) if neural else None

    async def publish(messages: list[Outgoing]) -> None:
        for m in messages:
            await topics[m.topic].send(key=m.key, value=m.value, headers=m.headers)

    def ingest(event: Any) -> tuple[Source, ScoreRequest | list[Outgoing]]:
        """Validate and apply to state: must run while ``event`` is the current event."""
        msg = event.message
        src = Source(msg.topic, msg.partition, msg.offset, msg.key, msg.headers or ())
        try:
            return src, processor.ingest(event.value, src)
        except Exception as exc:
            # A bug must not cost the event: it goes to the DLQ, the stream goes on.
            log.exception("processing failed at %s:%d:%d", *src.coordinates)
            return src, [processor.failed(event.value, src, exc)]

    @app.agent(events, name="recommend")
    async def recommend(stream: faust.StreamT) -> None:
        if server is None:
            await recommend_inline(stream)
        else:
            await recommend_batched(stream, server)

    async def recommend_inline(stream: faust.StreamT) -> None:
        """Markov: score at once (it reads the tables, so it stays on the loop)."""
        async for event in stream.events():
            consumed_at = time.monotonic()
            src, result = ingest(event)
            if isinstance(result, list):
                await publish(result)
                continue
            try:
                out = processor.recommend([result])
            except Exception as exc:
                log.exception("scoring failed at %s:%d:%d", *src.coordinates)
                await publish([processor.failed(event.value, src, exc)])
                continue
            await publish(out)
            monitoring.observe_published(consumed_at, result.event_ts)

    async def recommend_batched(stream: faust.StreamT, server: ModelServer) -> None:
        """Model: many events in flight, so the micro-batcher can fill its batches.

        State is updated here, in input order; scoring is awaited by the outbox,
        which publishes in input order and only then acks (offsets commit after
        output). Faust waits for those acks before a rebalance or a stop commits.
        """
        manual = stream.noack()
        outbox = Outbox(publish, manual.ack, processor.failed, settings.batch_queue_size)
        try:
            async for event in manual.events():
                consumed_at = time.monotonic()
                src, result = ingest(event)
                if isinstance(result, list):
                    await outbox.put(event, src, Outbox.ready(result))
                else:
                    published = partial(monitoring.observe_published, consumed_at, result.event_ts)
                    await outbox.put(event, src, server.recommend(result), published)
        finally:
            await outbox.drain(timeout=settings.session_timeout_s)

    @app.agent(control, name="erasure")
    async def forward_erasures(stream: faust.StreamT) -> None:
        """Erasure requests go to the user's input partition, to run in order with
        the user's events (state can only be written there; see Processor.forget)."""
        async for event in stream.events():
            msg = event.message
            try:
                key = ForgetRequest.decode(event.value).user_id.encode()
            except InvalidRequest as exc:
                src = Source(msg.topic, msg.partition, msg.offset, msg.key)
                await publish([processor.invalid_control(event.value, src, exc)])
                continue
            partition = partition_for(key, settings.partitions)
            await events.send(
                key=key, value=event.value, partition=partition, headers=forget_headers()
            )

    @app.timer(settings.sweep_interval_s)
    async def _send_sweeps() -> None:
        """Ask each owned partition to forget its idle users (see stream_app.control)."""
        for partition in local_partitions():
            await events.send(value=b"", partition=partition, headers=sweep_headers())

    if settings.log_summary_s > 0:
        summary = Summary(local_partitions, lambda: local_users(users))

        @app.timer(settings.log_summary_s)
        async def _log_summary() -> None:
            summary.log()

    if server is not None:
        if settings.model_reload_s > 0:
            app.timer(settings.model_reload_s)(server.reload_if_changed)

        @app.on_before_shutdown.connect
        async def _close_batcher(sender: Any, **kwargs: Any) -> None:
            await server.close()

    assigned_at: list[float] = []  # when the assignment being restored arrived

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        transitions.invalidate()
        if adjust is not None:
            adjust.feedback.clear()  # lists of users that moved: the table has them
        assigned_at[:] = [time.monotonic()]

    @users.on_recover
    async def _restored() -> None:
        """Faust calls this once the tables hold their changelogs' data again."""
        if assigned_at:
            monitoring.STATE_RESTORE.observe(time.monotonic() - assigned_at.pop())
        # One count per restore; ingest and sweeps keep it current from there.
        monitoring.STATE_USERS.set(len(users))

    lag_reported: set[str] = set()

    @app.timer(settings.metrics_interval_s)
    async def _sample_lag() -> None:
        await sample_consumer_lag(app, settings.input_topic, lag_reported)

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        transitions.invalidate()

    register_views(app, users, settings, processor.pseudonymize, local_partitions)
    return app


async def sample_consumer_lag(app: faust.App, topic: str, reported: set[str]) -> None:
    """``streamrec_consumer_lag_messages`` for each input partition this worker owns.

    Lag is the partition's end offset (asked from the broker) minus the offset
    this worker last committed (Faust's own record: the next offset to read).
    ``reported`` holds the partitions exported so far, so that a partition moved
    to another worker stops being reported here (its new owner reports it).
    """
    # Faust's record of committed offsets; a partition just taken over has none
    # until its restore ends, and is skipped until then (not counted from offset 0).
    committed = app.consumer._committed_offset
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


def load_model(settings: Settings) -> Scorer:
    """The configured checkpoint, in a child process (default) or in this one."""
    assert settings.model_dir is not None
    device = None if settings.device == "auto" else settings.device
    scorer: Scorer
    if settings.inference == "process":
        from models.serving.remote import ProcessScorer

        scorer = ProcessScorer(
            settings.model_dir, device, settings.influence, settings.torch_threads
        )
    else:
        from models.serving.scorer import NeuralScorer  # imports torch: only when a model is served

        scorer = NeuralScorer.load(settings.model_dir, device, influence_method=settings.influence)
    log.info("serving %s %s from %s", scorer.name, scorer.version, settings.model_dir)
    return scorer


def internal_topic_specs(settings: Settings) -> list[NewTopic]:
    """Faust's own topics, named as Faust names them: table changelogs, assignor leader."""
    n, rf = settings.partitions, settings.replication_factor
    compact = {  # what Faust gives a non-windowed table, with a bounded compaction delay
        "cleanup.policy": "compact",
        "segment.ms": str(settings.changelog_segment_ms),
        "min.cleanable.dirty.ratio": str(settings.changelog_min_dirty_ratio),
    }
    specs = [
        NewTopic(f"{settings.app_id}-{t}-changelog", n, rf, topic_configs=compact) for t in TABLES
    ]
    specs.append(NewTopic(f"{settings.app_id}-__assignor-__leader", 1, rf))
    return specs


def run_worker(settings: Settings) -> None:
    """Declare topics, then run one Faust worker in this process until stopped."""
    asyncio.run(ensure_topics(settings, internal_topic_specs(settings)))
    (settings.data_dir / settings.app_id).mkdir(parents=True, exist_ok=True)
    if settings.metrics_port:
        # Its own port and thread: scrapes are answered even while the loop is busy.
        prometheus_client.start_http_server(settings.metrics_port, settings.metrics_host)
    app = create_app(settings)
    worker = faust.Worker(
        app, loglevel=settings.log_level, quiet=True, logging_config=logs.dict_config(settings)
    )
    if not sys.stdout.isatty():
        worker.spinner = None  # its progress frames would flood log files
    worker.execute_from_commandline()
