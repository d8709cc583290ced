"""The worker's start-up after a restart: what was cut from Faust's fixed costs
(:mod:`stream_app.kafka.fetch_wait`, :mod:`stream_app.state.table_manager`, the
RocksDB store's revoke) keeps what it replaced where it still matters."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import faust
import pytest

from stream_app.app import create_app
from stream_app.settings import Settings
from stream_app.state.table_manager import TableManager


def worker_app(tmp_path: Path, **fields: Any) -> faust.App:
    return create_app(Settings(data_dir=tmp_path, **fields))


async def test_the_worker_consumer_gets_the_configured_fetch_wait(tmp_path: Path) -> None:
    app = worker_app(tmp_path, fetch_max_wait_ms=77, fetch_min_bytes=4321)
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 77  # Faust's own: 1500
        assert consumer._fetch_min_bytes == 4321  # aiokafka's own: 1
    finally:
        await consumer.stop()


async def test_the_table_manager_starts_without_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = worker_app(tmp_path)
    manager = app.tables
    assert isinstance(manager, TableManager)

    async def no_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s before subscribing")

    done: list[str] = []

    async def update_channels() -> None:
        done.append("channels")

    async def recovery_start() -> None:
        done.append("recovery")

    monkeypatch.setattr(manager, "sleep", no_sleep)
    monkeypatch.setattr(manager, "_update_channels", update_channels)
    monkeypatch.setattr(manager.recovery, "start", recovery_start)
    await asyncio.wait_for(manager.on_start(), timeout=30)
    assert done == ["channels", "recovery"]  # Faust's order, without the second before


def test_revoke_collects_garbage_only_for_its_own_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = worker_app(tmp_path)
    users, items = app.tables["users"], app.tables["items"]
    store = users.data
    calls: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append(1) or 0)
    store._dbs[2] = object()
    items_tp = next(iter(items.changelog_topic.topics))
    store.revoke_partitions(users, {faust.types.TP(items_tp, 2)})
    assert calls == [] and 2 in store._dbs  # another table's partition: nothing to close
    users_tp = next(iter(users.changelog_topic.topics))
    store.revoke_partitions(users, {faust.types.TP(users_tp, 2)})
    assert calls == [1] and 2 not in store._dbs  # Faust's revoke, gc included
