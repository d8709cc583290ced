"""The dashboard against a real Prometheus scraping a real worker.

Debian's ``prometheus`` (installed by scripts/setup.sh) runs the compose scrape
job rewritten to static targets (the workers' metrics ports, a 1 s scrape
interval). Two workers: the Markov path (state, adjuster, live quality) and a
tiny trained model served through the micro-batcher (the batcher's series),
each on its own topics, and a continual trainer beside the served worker.
Traffic, including invalid events, goes through both;
then every PromQL expression of docker/grafana/dashboards/streamrec.json must
return a series with a number through the HTTP API, and ``promtool`` must
accept the configs and the workers' exposition.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.request
from pathlib import Path

import msgpack
import pytest

from scripts import dashboard
from scripts.plot_dashboard import LocalPrometheus, promtool, query, substitute
from stream_app.harness import Stack
from tests.conftest import new_stack, wait_for
from tests.integration.kafka_io import read_n, send_all
from tests.integration.test_neural_serving import train_tiny
from tests.integration.test_pipeline import event
from tests.integration.test_trainer import start_trainer

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def scrape(port: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return resp.read().decode()


def traffic(now: int, users: int, start: int) -> list[tuple[bytes | None, bytes]]:
    """Users walk items 1 -> 2 -> 1 -> 3 (the adjuster sees its lists hit and miss)."""
    return [
        (f"u{u}".encode(), event(f"u{u}", item, now + 10 * step, f"u{u}-{start + step}"))
        for step, item in enumerate(["1", "2", "1", "3"])
        for u in range(users)
    ]


async def test_every_dashboard_query_returns_series_from_prometheus(
    bootstrap: str, tmp_path: Path
) -> None:
    fast = {"metrics_interval_s": 1}
    markov = new_stack(bootstrap, tmp_path, **fast)
    (tmp_path / "served").mkdir()
    model_dir = str(train_tiny(tmp_path))
    served = new_stack(bootstrap, tmp_path / "served", model_dir=model_dir, **fast)
    try:
        ports = [st.worker().start().env["STREAMREC_METRICS_PORT"] for st in (markov, served)]
        for port in ports:  # ready: partitions assigned and restored
            wait_for(lambda p=port: _restores(_try_scrape(p)) >= 1, 120)
        # The trainer beside the served worker: a round once the traffic is in.
        trainer = start_trainer(served, tmp_path / "served", trainer_min_events=100)
        port = trainer.env["STREAMREC_TRAINER_METRICS_PORT"]
        wait_for(lambda: "streamrec_trainer_model_age_seconds" in _try_scrape(port), 120)
        await _check_dashboard(markov, served, [*ports, port])
    finally:
        markov.stop()
        served.stop()


async def _check_dashboard(markov: Stack, served: Stack, ports: list[str]) -> None:
    targets = [f"127.0.0.1:{port}" for port in ports]
    with LocalPrometheus(targets, scrape_interval_s=1.0) as prom:
        check = promtool("check", "config", str(prom.config))
        assert check.returncode == 0, check.stdout + check.stderr

        # Scraped before the traffic: each counter's increase then lies in Prometheus.
        up = "min(count_over_time(up{job='streamrec'}[1m]))"
        wait_for(lambda: _value(prom.url, up) >= 2)
        now = int(time.time() * 1000)
        bad = [
            (b"x", b"\xc1 not msgpack"),
            (b"y", msgpack.packb({"user_id": "y", "event_type": "click", "ts": now})),
            (b"z", msgpack.packb({"user_id": "z", "item_id": "i", "event_type": "z", "ts": now})),
        ]
        sent = 0
        for rnd in range(3):  # spread over several scrapes, so rates have two points
            msgs = traffic(now + rnd * 100, 20, rnd * 4) + bad
            for st in (markov, served):
                await send_all(st.settings.bootstrap, st.settings.input_topic, msgs)
            sent += len(msgs) - len(bad)
            await asyncio.sleep(2)
        for st in (markov, served):
            out = await read_n(st.settings.bootstrap, st.settings.output_topic, sent, timeout=90)
            assert len(out) == sent

        total = "sum(streamrec_recommendations_published_total)"
        wait_for(lambda: _value(prom.url, total) >= 2 * sent, timeout=30)
        rounds = "sum(streamrec_trainer_rounds_total)"
        wait_for(lambda: _value(prom.url, rounds) >= 1, timeout=60)
        for port in ports:
            lint = promtool("check", "metrics", stdin=scrape(port))
            assert lint.returncode == 0, lint.stdout + lint.stderr

        exprs = {e: substitute(e, "60s") for e in dashboard.expressions(dashboard.build())}
        results: dict[str, list] = {}

        def all_answer() -> bool:
            for expr, promql in exprs.items():
                results[expr] = query(prom.url, promql)
            return all(results.values())

        try:
            wait_for(all_answer, timeout=30, interval=1)
        except TimeoutError:
            empty = [e for e, r in results.items() if not r]
            pytest.fail(f"no series for {len(empty)} queries: {json.dumps(empty, indent=1)}")
        for expr, series in results.items():
            assert any(not math.isnan(float(x["value"][1])) for x in series), (expr, series)
        # What the traffic did shows up with its labels.
        by_reason = {r["metric"]["reason"] for r in query(prom.url, _reasons())}
        assert {"undecodable", "missing_field", "unknown_event_type"} <= by_reason
        # 20 users per worker: invalid events store nobody.
        assert _value(prom.url, "sum(streamrec_state_users)") == 2 * 20
        assert _value(prom.url, "sum(streamrec_dlq_messages_total)") == 2 * 3 * len(bad)
        models = {r["metric"]["name"]: r["metric"] for r in query(prom.url, "streamrec_model_info")}
        assert models["markov"]["device"] == "cpu"
        assert models["neural-transformer"]["device"] == "cpu"
        assert _value(prom.url, "sum(streamrec_batcher_batch_size_sum)") == sent  # requests


def _value(url: str, promql: str) -> float:
    """The value of a query returning one series (-1 when it returns none)."""
    series = query(url, promql)
    return float(series[0]["value"][1]) if series else -1.0


def _reasons() -> str:
    return "sum by (reason) (streamrec_invalid_events_total) > 0"


def _restores(text: str) -> float:
    name = "streamrec_state_restore_seconds_count "
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def _try_scrape(port: str) -> str:
    try:
        return scrape(port)
    except OSError:
        return ""
