"""Hot reload under traffic: a new checkpoint is swapped in, nothing lost or repeated."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import torch

from models.serving import checkpoint
from tests.conftest import new_stack, wait_for
from tests.integration.kafka_io import decoded, read_n, send_all
from tests.integration.test_neural_serving import train_tiny
from tests.integration.test_pipeline import event

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def second_version(model_dir: Path, out: Path) -> str:
    """The same checkpoint with nudged weights: a different version id."""
    ckpt = checkpoint.load(model_dir)
    with torch.no_grad():
        ckpt.network.next_head.bias.add_(0.01)
    return checkpoint.save(out, ckpt.network, ckpt.vocab, ckpt.transitions, {"dataset": "tiny"})


def repoint(link: Path, target: Path) -> None:
    """Atomic symlink swap, the documented way to deploy a checkpoint."""
    tmp = link.with_name(link.name + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def scrape(env: dict[str, str]) -> str:
    url = f"http://127.0.0.1:{env['STREAMREC_METRICS_PORT']}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()
    except OSError:
        return ""  # not listening yet


async def test_hot_reload_under_traffic_loses_nothing(bootstrap: str, tmp_path: Path) -> None:
    first = train_tiny(tmp_path)
    v1 = checkpoint.load(first).version
    v2 = second_version(first, tmp_path / "model2")
    assert v1 != v2
    current = tmp_path / "current"
    repoint(current, first)
    stack = new_stack(
        bootstrap,
        tmp_path,
        model_dir=str(current),
        model_reload_s=0.5,
        batch_max_delay_ms=20,
    )
    worker = stack.worker().start()
    try:
        s = stack.settings
        now = int(time.time() * 1000)
        n_users = 40

        def wave(r: int) -> list[tuple[bytes, bytes]]:
            return [
                (f"u{u}".encode(), event(f"u{u}", str(1 + (u + r) % 40), now + r, f"e{r}-{u}"))
                for u in range(n_users)
            ]

        def serving(version: str) -> bool:
            return f'version="{version}"' in scrape(worker.env)

        sent = 0
        for _ in range(5):  # traffic on the first model
            await send_all(s.bootstrap, s.input_topic, wave(sent))
            sent += 1
            await asyncio.sleep(0.3)
        await asyncio.to_thread(wait_for, lambda: serving(v1), 60)
        repoint(current, tmp_path / "model2")
        deadline = time.monotonic() + 120
        while not await asyncio.to_thread(serving, v2):  # traffic while the new one loads
            assert time.monotonic() < deadline, worker.log()[-3000:]
            await send_all(s.bootstrap, s.input_topic, wave(sent))
            sent += 1
            await asyncio.sleep(0.3)
        for _ in range(5):  # and on the new model
            await send_all(s.bootstrap, s.input_topic, wave(sent))
            sent += 1
            await asyncio.sleep(0.3)
        n = n_users * sent
        recs = decoded(await read_n(s.bootstrap, s.output_topic, n, timeout=120, settle=2))
        ids = Counter(r["source_event_id"] for r in recs)
        assert len(ids) == n and max(ids.values()) == 1, worker.log()[-3000:]
        # The adjuster re-ranks the model's lists and learns from the users' next events.
        learned = [int(r["model"]["adjuster"].removeprefix("river-slots@")) for r in recs]
        assert max(learned) > 0
        versions = [r["model"]["version"] for r in recs]
        assert set(versions) == {v1, v2}, Counter(versions)
        # Per user, once the new model answered, the old one never does again.
        for u in range(n_users):
            mine = [r["model"]["version"] for r in recs if r["user_id"] == f"u{u}"]
            assert mine == sorted(mine, key=lambda v: v == v2)
        metrics = scrape(worker.env)
        assert 'streamrec_model_reloads_total{result="ok"} 1.0' in metrics
        assert f'version="{v2}"' in metrics
        assert "streamrec_batcher_batch_size_count" in metrics
        assert "streamrec_batcher_queue_wait_seconds_bucket" in metrics
        assert "streamrec_batcher_inference_seconds_sum" in metrics
        assert "streamrec_batcher_queue_depth" in metrics
        assert 'streamrec_live_hits_total{list="base"}' in metrics
    finally:
        stack.stop()
