"""The worker publishes lists re-ranked by the online adjuster, and exports live quality."""

from __future__ import annotations

import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from stream_app.harness import Stack
from tests.conftest import new_stack
from tests.integration.kafka_io import decoded, read_n, send_all
from tests.integration.test_pipeline import event

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def walk(stack: Stack, now: int) -> list[dict]:
    """30 users walk items 1 -> 2 -> 1 -> 3 (a return to an earlier item); their recs."""
    s = stack.settings
    msgs = [
        (f"u{u}".encode(), event(f"u{u}", item, now + 10 * step, f"u{u}-{step}"))
        for step, item in enumerate(["1", "2", "1", "3"])
        for u in range(30)
    ]
    await send_all(s.bootstrap, s.input_topic, msgs)
    return decoded(await read_n(s.bootstrap, s.output_topic, len(msgs), timeout=120))


def metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


async def test_worker_publishes_adjusted_lists_and_live_quality(
    bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(bootstrap, tmp_path)
    worker = stack.worker().start()
    try:
        recs = await walk(stack, int(time.time() * 1000))
        assert len(recs) == 120, worker.log()[-3000:]
        names = [r["model"]["adjuster"] for r in recs]
        assert all(n.startswith("river-slots@") for n in names)
        assert max(int(n.split("@")[1]) for n in names) > 0  # it has learned
        last = [r for r in recs if r["source_event_id"].endswith("-3")]
        # A 3-item catalogue: the list holds the other two, never the current item.
        assert all({x["item_id"] for x in r["items"]} == {"1", "2"} for r in last)
        url = f"http://127.0.0.1:{worker.env['STREAMREC_METRICS_PORT']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        assert metric(text, "streamrec_live_evaluated_events_total") >= 60
        assert metric(text, "streamrec_adjuster_examples") > 0
        assert 'streamrec_live_quality{list="adjusted",metric="NDCG@10"}' in text
        assert 'streamrec_live_quality{list="base",metric="NDCG@10"}' in text
        # Each user's 2nd..4th event scores the purchase prediction made with the list before.
        assert all(0.0 <= r["purchase_propensity"] <= 1.0 for r in recs)
        assert metric(text, "streamrec_live_purchase_evaluated_total") == 30 * 3
        assert 'streamrec_live_purchase_quality{metric="auc",window="cumulative"}' in text
    finally:
        stack.stop()


async def test_the_adjuster_survives_a_worker_restart(bootstrap: str, tmp_path: Path) -> None:
    stack = new_stack(bootstrap, tmp_path)
    try:
        s = stack.settings
        worker = stack.worker(0).start()
        now = int(time.time() * 1000)
        recs = await walk(stack, now)
        learned = max(int(r["model"]["adjuster"].split("@")[1]) for r in recs)
        assert learned > 0
        worker.stop()  # SIGTERM: the adjuster is checkpointed at shutdown
        saved = list((tmp_path / "worker0" / s.app_id / "adjuster").glob("adjuster-*.pkl"))
        assert saved, worker.log()[-2000:]
        stack.worker(0).start()  # same state directory
        await send_all(s.bootstrap, s.input_topic, [(b"new", event("new", "2", now + 99, "n1"))])
        recs = decoded(await read_n(s.bootstrap, s.output_topic, 121, timeout=120))
        after = [r for r in recs if r["source_event_id"] == "n1"]
        assert after and int(after[0]["model"]["adjuster"].split("@")[1]) >= learned
    finally:
        stack.stop()


async def test_open_lists_survive_a_restart_with_the_local_state_wiped(
    bootstrap: str, tmp_path: Path
) -> None:
    """Lists published before a restart are labelled by the users' next events after it:
    they come back from the feedback table's changelog, not from local files."""
    stack = new_stack(bootstrap, tmp_path, adjust_learn_every=1)  # each label learned at once
    try:
        s = stack.settings
        worker = stack.worker(0).start()
        now = int(time.time() * 1000)
        first = [(f"u{u}".encode(), event(f"u{u}", "1", now, f"u{u}-0")) for u in range(30)]
        await send_all(s.bootstrap, s.input_topic, first)
        recs = decoded(await read_n(s.bootstrap, s.output_topic, 30, timeout=120))
        shown = {r["user_id"]: r["items"][0]["item_id"] for r in recs}
        assert all(int(r["model"]["adjuster"].split("@")[1]) == 0 for r in recs)
        worker.stop()
        shutil.rmtree(worker.env["STREAMREC_DATA_DIR"])  # no local state, no checkpoint
        worker = stack.worker(0).start()
        # Each user now clicks the item shown first: a positive for the adjuster.
        second = [
            (u.encode(), event(u, item, now + 10, f"{u}-1")) for u, item in sorted(shown.items())
        ]
        await send_all(s.bootstrap, s.input_topic, second)
        recs = decoded(await read_n(s.bootstrap, s.output_topic, 60, timeout=120))
        after = [r for r in recs if r["source_event_id"].endswith("-1")]
        assert len(after) == 30, worker.log()[-3000:]
        learned = max(int(r["model"]["adjuster"].split("@")[1]) for r in after)
        assert learned >= 30, worker.log()[-3000:]  # >= one positive per user's list
    finally:
        stack.stop()
