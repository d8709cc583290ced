"""The dashboard against a real Prometheus scraping a real worker.

Debian's ``prometheus`` (installed by scripts/setup.sh) runs the compose scrape
job rewritten to a static target (the worker's metrics port, a 1 s scrape
interval); traffic, including invalid events, goes through the worker; then
every PromQL expression of docker/grafana/dashboards/streamrec.json must return
a series through the HTTP API, and ``promtool`` must accept the configs and the
worker's exposition.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.request

import msgpack
import pytest

from scripts import dashboard
from scripts.plot_dashboard import LocalPrometheus, promtool, query, substitute
from tests.conftest import Stack, wait_for
from tests.integration.kafka_io import read_n, send_all
from tests.integration.test_pipeline import event

pytestmark = [pytest.mark.broker, pytest.mark.slow]

# Quantiles of histograms that only a served model feeds: on the Markov path
# they exist (zero counts) but their value is NaN. Every other query must have
# a number.
MODEL_ONLY = ("streamrec_batcher_batch_size", "_queue_wait_seconds", "_inference_seconds")


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


async def test_every_dashboard_query_returns_series_from_prometheus(stack: Stack) -> None:
    s = stack.settings
    stack.env_vars["STREAMREC_METRICS_INTERVAL_S"] = "1"
    worker = stack.worker().start()
    port = worker.env["STREAMREC_METRICS_PORT"]
    wait_for(lambda: "streamrec_consumer_lag_messages{" in _try_scrape(port), timeout=90)
    with LocalPrometheus([f"127.0.0.1:{port}"], scrape_interval_s=1.0) as prom:
        check = promtool("check", "config", str(prom.config))
        assert check.returncode == 0, check.stdout + check.stderr

        # Scraped before the traffic: each counter's increase then lies in Prometheus.
        wait_for(lambda: _value(prom.url, "count_over_time(up{job='streamrec'}[1m])") >= 2)
        now = int(time.time() * 1000)
        bad = [
            (b"x", b"\xc1 not msgpack"),
            (b"y", msgpack.packb({"user_id": "y", "event_type": "click", "ts": now})),
            (b"z", msgpack.packb({"user_id": "z", "item_id": "i", "event_type": "z", "ts": now})),
        ]
        sent = 0
        for rnd in range(3):  # spread over several scrapes, so rates have two points
            msgs = traffic(now + rnd * 100, 20, rnd * 4) + bad
            await send_all(s.bootstrap, s.input_topic, msgs)
            sent += len(msgs) - len(bad)
            await asyncio.sleep(2)
        assert len(await read_n(s.bootstrap, s.output_topic, sent, timeout=90)) == sent

        total = "sum(streamrec_recommendations_published_total)"
        wait_for(lambda: _value(prom.url, total) >= sent, timeout=30)
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
            values = [float(x["value"][1]) for x in series]
            if not any(k in expr for k in MODEL_ONLY):
                assert any(not math.isnan(v) for v in values), (expr, series)
        # What the traffic did shows up with its labels.
        by_reason = {r["metric"]["reason"] for r in query(prom.url, _reasons())}
        assert {"undecodable", "missing_field", "unknown_event_type"} <= by_reason
        assert _value(prom.url, "sum(streamrec_state_users)") == 20  # invalid events store nobody
        assert _value(prom.url, "sum(streamrec_dlq_messages_total)") == 3 * len(bad)


def _value(url: str, promql: str) -> float:
    """The value of a query returning one series (-1 when it returns none)."""
    series = query(url, promql)
    return float(series[0]["value"][1]) if series else -1.0


def _reasons() -> str:
    return "sum by (reason) (streamrec_invalid_events_total) > 0"


def _try_scrape(port: str) -> str:
    try:
        return scrape(port)
    except OSError:
        return ""
