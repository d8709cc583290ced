"""The single entry point: composes the Faust app from its parts.

``create_app(settings)`` returns the app: its topics and tables
(:mod:`stream_app.topology`), the pipeline (:mod:`stream_app.components`), the
agents (:mod:`stream_app.agents`), rebalance handlers and timers
(:mod:`stream_app.lifecycle`). ``run_worker(settings)`` runs it.
Faust 0.15.3 is patched for the recovery gap (upstream #596) by
:mod:`stream_app.compat`, applied in ``create_app``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from functools import partial
from typing import Any

import faust
import prometheus_client

from models.base import Scorer
from stream_app import compat, logs, monitoring
from stream_app.agents import Agents
from stream_app.caches import cache_sizes
from stream_app.components import State, build_components
from stream_app.kafka import fetch_wait, static_member
from stream_app.kafka.admin import ensure_topics
from stream_app.kafka.security import faust_credentials
from stream_app.kafka.wait import wait_for_kafka
from stream_app.lifecycle import AdjusterCheckpoint, Rebalance, Timers
from stream_app.served_model import ModelServer
from stream_app.settings import Settings
from stream_app.state import rocksdb, table_manager
from stream_app.state.markov_store import TableTransitionStore
from stream_app.state.write_back import WriteBack
from stream_app.topology import TABLES, declare, internal_topic_specs
from stream_app.web import register_views

__all__ = [
    "TABLES",
    "create_app",
    "faust_settings",
    "internal_topic_specs",
    "load_model",
    "rocksdb_options",
    "run_worker",
]

log = logging.getLogger(__name__)
GC_THRESHOLD = 20_000  # allocations between young collections (Python: 700)


def faust_settings(settings: Settings) -> dict[str, Any]:
    store = f"{rocksdb.SCHEME}://" if settings.store == "rocksdb" else "memory://"
    return {
        "broker": f"kafka://{settings.bootstrap}",
        "broker_credentials": faust_credentials(settings),
        "store": store,
        # Faust's, bulk-restoring every table's new partitions at once when enabled.
        "TableManager": table_manager.TableManager,
        "datadir": str(settings.data_dir / settings.app_id),
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "key_serializer": "raw",
        "value_serializer": "raw",
        # Small timeouts: a worker joins, and a dead one is noticed, within seconds.
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": settings.heartbeat_interval_s,
        # Static membership: a restarted worker replaces its dead predecessor at once.
        "consumer_group_instance_id": static_member.instance_id(
            settings.group_instance_id,
            settings.app_id,
            settings.data_dir,
            f"{settings.web_host}:{settings.web_port}",
        ),
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
    """The worker's app. Data flows one way: an event from the input topic is applied
    to state, scored, adjusted and published (:class:`~stream_app.agents.Agents`)."""
    compat.apply()
    fetch_wait.apply(settings.fetch_max_wait_ms, settings.fetch_min_bytes)
    if settings.store == "rocksdb" and settings.bulk_restore:
        table_manager.enable_bulk_restore(settings)
    app = faust.App(settings.app_id, **faust_settings(settings))
    topology = declare(app, settings, rocksdb_options(settings))
    # The pipeline writes the tables through these: at once, or once per batch.
    users, items, feedback = (
        WriteBack(t) for t in (topology.users, topology.items, topology.feedback)
    )
    transitions = TableTransitionStore(
        items, topology.local_partitions, settings.markov_max_successors
    )
    state = State(users, transitions, feedback=feedback)
    # A trained model when one is configured; the online Markov model otherwise.
    model = load_model(settings) if settings.model_dir is not None else None
    parts = build_components(settings, state, model)
    monitoring.export_model(parts.scorer)
    server = (
        ModelServer(settings, parts.processor, partial(load_model, settings))
        if model is not None
        else None
    )
    if parts.adjust is not None:
        checkpoint_dir = settings.data_dir / settings.app_id / "adjuster"
        AdjusterCheckpoint(parts.adjust, checkpoint_dir).register(app, settings.adjust_checkpoint_s)
    Agents(settings, topology, parts.processor, server, ((items,), (users, feedback))).register(app)
    Timers(settings, topology, server).register(app)
    Rebalance(topology.users, parts.processor.states, transitions, parts.adjust).register(app)
    register_views(
        app,
        topology.users,
        settings,
        parts.processor.pseudonymize,
        topology.local_partitions,
        partial(cache_sizes, transitions, parts.processor.states, parts.adjust),
    )
    return app


def load_model(settings: Settings) -> Scorer:
    """The configured checkpoint, in a child process (default) or in this one."""
    assert settings.model_dir is not None
    device = None if settings.device == "auto" else settings.device
    scorer: Scorer
    if settings.inference == "process":
        from models.serving.remote import ProcessScorer

        scorer = ProcessScorer(
            settings.model_dir,
            device,
            settings.influence,
            settings.torch_threads,
            settings.serve_precision,
        )
    else:
        from models.serving.scorer import NeuralScorer  # imports torch: only when a model is served

        scorer = NeuralScorer.load(
            settings.model_dir,
            device,
            influence_method=settings.influence,
            precision=settings.serve_precision,
        )
    log.info("serving %s %s from %s", scorer.name, scorer.version, settings.model_dir)
    return scorer


def run_worker(settings: Settings) -> None:
    """Wait for Kafka, declare topics, then run one Faust worker in this process until
    stopped."""
    asyncio.run(wait_for_kafka(settings))
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
    tune_gc()
    worker.execute_from_commandline()


def tune_gc() -> None:
    """Fewer cyclic collections: each event allocates many short-lived objects and
    few cycles (reference counting frees them), while every collection scans the
    young generation, and a full one the whole heap. What exists at start (code,
    Faust, the model) is frozen out of the scans."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)
