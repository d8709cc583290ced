"""The continual trainer beside a worker, on the real broker.

A tiny served checkpoint (40 items), a worker hot reloading it, and
``streamrec trainer`` in its own process, with a round every second. Users walk
a cycle through old items and items the checkpoint never saw; after the
trainer promotes, the worker's recommendations carry the new version and name
the new items. A trainer drilled to train on shuffled labels has its candidate
rejected, and the worker keeps serving the first version. A trainer whose broker
goes away and comes back reads on, every event into its window once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_app.harness import Stack, free_port, local_broker_settings, settings_env
from stream_app.kafka.broker import EmbeddedBroker
from stream_app.processes import WorkerProcess
from tests.conftest import new_stack, wait_for
from tests.integration.kafka_io import decoded, read_n, send_all
from tests.integration.test_neural_serving import train_tiny
from tests.integration.test_pipeline import event

pytestmark = [pytest.mark.broker, pytest.mark.slow]

# Old items and new ones ("new-*", never in the checkpoint) follow each other in one cycle.
CYCLE = ["1", "2", "3", "new-a", "4", "5", "new-b", "6", "7", "new-c"]


def walks(n_users: int, steps: int, now: int, tag: str) -> list[tuple[bytes, bytes]]:
    msgs = []
    for step in range(steps):
        for u in range(n_users):
            item = CYCLE[(u + step) % len(CYCLE)]
            msgs.append(
                (f"{tag}{u}".encode(), event(f"{tag}{u}", item, now + step, f"{tag}{u}-{step}"))
            )
    return msgs


def scrape(port: str) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            return r.read().decode()
    except OSError:
        return ""


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def start_trainer(stack: Stack, tmp: Path, **fields: object) -> WorkerProcess:
    own = {
        "trainer_dir": tmp / "trainer",
        "trainer_interval_s": 1,
        "trainer_min_events": 200,
        "trainer_holdout_events": 100,
        "trainer_snapshot_s": 1,
        "trainer_metrics_port": free_port(),
        "trainer_epochs": 5,
        "trainer_lr": 0.005,
        **fields,
    }
    env = {**stack.env_vars, **settings_env(**own)}
    proc = WorkerProcess(
        {**os.environ, **env},
        tmp / "trainer.log",
        argv=[sys.executable, "-m", "stream_app", "trainer"],
    )
    stack.workers.append(proc)
    return proc.start()


def version_of(model_dir: Path) -> str:
    return str(json.loads((model_dir / "meta.json").read_text())["version"])


@contextlib.contextmanager
def served_worker(bootstrap: str, tmp: Path) -> Iterator[tuple[Path, Stack, WorkerProcess]]:
    """A tiny checkpoint (40 items) and a ready worker hot reloading it."""
    model_dir = train_tiny(tmp)
    stack = new_stack(bootstrap, tmp, model_dir=str(model_dir), model_reload_s=0.5, adjust=False)
    try:
        worker = stack.worker().start()
        worker.wait_ready()
        yield model_dir, stack, worker
    finally:
        stack.stop()


async def test_trainer_promotes_and_new_items_are_served(bootstrap: str, tmp_path: Path) -> None:
    with served_worker(bootstrap, tmp_path) as (model_dir, stack, worker):
        v1 = version_of(model_dir)
        now = int(time.time() * 1000)
        msgs = walks(60, 8, now, "u")
        # One round, once every event is in (none on the interval).
        trainer = start_trainer(
            stack, tmp_path, trainer_interval_s=3600, trainer_every_events=len(msgs)
        )
        port = trainer.env["STREAMREC_TRAINER_METRICS_PORT"]
        s = stack.settings
        await send_all(s.bootstrap, s.input_topic, msgs)
        promoted = 'streamrec_trainer_rounds_total{result="promoted"}'
        wait_for(lambda: sample(scrape(port), promoted) >= 1, 120)
        v2 = version_of(model_dir)
        assert v2 != v1 and model_dir.is_symlink()
        # The worker hot reloads it; then users who just saw "3" are offered "new-a".
        wait_for(lambda: f'version="{v2}"' in scrape(worker.env["STREAMREC_METRICS_PORT"]), 60)
        probes = [
            (f"p{u}".encode(), event(f"p{u}", item, now + 100 + k, f"p{u}-{k}"))
            for u in range(5)
            for k, item in enumerate(["1", "2", "3"])
        ]
        await send_all(s.bootstrap, s.input_topic, probes)
        recs = decoded(await read_n(s.bootstrap, s.output_topic, len(msgs) + len(probes), 120))
        mine = [r for r in recs if r["user_id"].startswith("p")]
        assert len(mine) == len(probes)
        assert {r["model"]["version"] for r in mine} == {v2}
        last = [r for r in mine if r["source_event_id"].endswith("-2")]
        assert all("new-a" in [x["item_id"] for x in r["items"]] for r in last), last
        metrics = scrape(port)
        assert sample(metrics, "streamrec_trainer_vocab_items") == 43
        assert sample(metrics, "streamrec_trainer_train_examples") > 0
        # A restart resumes from the window on disk and the promoted checkpoint.
        window = len(msgs) + len(probes)
        wait_for(lambda: sample(scrape(port), "streamrec_trainer_window_events") == window, 30)
        assert trainer.stop() == 0
        trainer.start()
        wait_for(lambda: sample(scrape(port), "streamrec_trainer_window_events") == window, 60)
        assert f"window restored: {window} events" in trainer.log_tail(20)
        assert f"current model {v2}" in trainer.log_tail(20)


async def test_a_broken_candidate_is_rejected(bootstrap: str, tmp_path: Path) -> None:
    with served_worker(bootstrap, tmp_path) as (model_dir, stack, _):
        v1 = version_of(model_dir)
        trainer = start_trainer(stack, tmp_path, trainer_shuffle_labels=True)
        port = trainer.env["STREAMREC_TRAINER_METRICS_PORT"]
        s = stack.settings
        now = int(time.time() * 1000)
        # Walks the checkpoint knows: 1 -> 2 -> ... -> 40 -> 1.
        msgs = [
            (f"u{u}".encode(), event(f"u{u}", str((u + k) % 40 + 1), now + k, f"u{u}-{k}"))
            for k in range(8)
            for u in range(60)
        ]
        await send_all(s.bootstrap, s.input_topic, msgs)
        rejected = 'streamrec_trainer_rounds_total{result="rejected"}'
        wait_for(lambda: sample(scrape(port), rejected) >= 1, 120)
        metrics = scrape(port)
        assert sample(metrics, 'streamrec_trainer_rounds_total{result="promoted"}') == 0, metrics
        assert version_of(model_dir) == v1 and not model_dir.is_symlink()
        kept = list((tmp_path / "trainer" / "rejected").iterdir())
        assert kept and (kept[0] / "report.json").exists()
        recs = decoded(await read_n(s.bootstrap, s.output_topic, len(msgs), 120))
        assert {r["model"]["version"] for r in recs} == {v1}


def test_the_trainer_reads_on_across_a_broker_outage(tmp_path: Path) -> None:
    base = local_broker_settings()  # its own broker, stopped and started again
    broker = EmbeddedBroker(base, data_dir=tmp_path / "broker").start()
    stack = new_stack(base.bootstrap, tmp_path, model_dir=str(tmp_path / "models"))
    try:
        # No round: reading and the window are what an outage could break.
        trainer = start_trainer(
            stack, tmp_path, trainer_interval_s=3600, trainer_every_events=10**9
        )
        port = trainer.env["STREAMREC_TRAINER_METRICS_PORT"]
        s = stack.settings
        now = int(time.time() * 1000)
        before, after = walks(30, 10, now, "a"), walks(30, 10, now + 100, "b")
        asyncio.run(send_all(s.bootstrap, s.input_topic, before))
        window = "streamrec_trainer_window_events"
        wait_for(lambda: sample(scrape(port), window) == len(before), 120)
        broker.stop()
        time.sleep(8)  # longer than a snapshot's commit and a few fetches
        assert trainer.running, trainer.log_tail()
        broker.start()
        asyncio.run(send_all(s.bootstrap, s.input_topic, after))
        wait_for(lambda: sample(scrape(port), window) == len(before) + len(after), 180)
        assert sample(scrape(port), "streamrec_trainer_events_total") == len(before) + len(after)
        assert trainer.stop() == 0, trainer.log_tail()
    finally:
        stack.stop()
        broker.stop()
