"""Generates the Grafana dashboard ``docker/grafana/dashboards/streamrec.json``.

Every query is built from the metric objects in :mod:`stream_app.monitoring` (and
:mod:`stream_app.trainer.telemetry` for the trainer's row), so a
renamed metric changes the dashboard with it; ``tests/test_dashboard.py`` checks
that the committed JSON is this script's output and that every metric a query
names is one the worker exports. ``scripts/plot_dashboard.py`` renders the same
panels from a Prometheus server into a PNG.

    .venv/bin/python -m scripts.dashboard            # rewrite the JSON
    .venv/bin/python -m scripts.dashboard --check    # exit 1 if it is stale

Conventions: counters are shown as ``rate(...[$__rate_interval])`` summed
across workers, latencies as ``histogram_quantile`` of the summed bucket rates,
and every selector carries ``instance=~"$instance"`` (the dashboard's worker
variable, "All" by default).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Histogram, Info
from prometheus_client.metrics import MetricWrapperBase

from stream_app import monitoring as m
from stream_app.trainer import telemetry as tm

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docker" / "grafana" / "dashboards" / "streamrec.json"
DATASOURCE_UID = "streamrec-prometheus"  # fixed in the datasource provisioning file
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
QUANTILES = (0.5, 0.95, 0.99)


# -- PromQL from metric objects ---------------------------------------------------
def name(metric: MetricWrapperBase | str, suffix: str = "") -> str:
    """The exposed sample name: ``_total`` for counters, ``_info`` for info metrics."""
    if isinstance(metric, str):  # a default collector's sample (process_*)
        return metric + suffix
    base = metric.describe()[0].name
    if isinstance(metric, Counter):
        return base + "_total"
    if isinstance(metric, Info):
        return base + "_info"
    return base + suffix


def sel(series: MetricWrapperBase | str, suffix: str = "", **labels: str) -> str:
    """``name{instance=~"$instance",label="value"...}``."""
    matchers = ['instance=~"$instance"'] + [f'{k}="{v}"' for k, v in labels.items()]
    return f"{name(series, suffix)}{{{','.join(matchers)}}}"


def rate(series: MetricWrapperBase | str, by: str = "", suffix: str = "", **labels: str) -> str:
    grouping = f"sum by ({by}) " if by else "sum "
    return f"{grouping}(rate({sel(series, suffix, **labels)}[$__rate_interval]))"


def quantile(q: float, histogram: Histogram) -> str:
    buckets = f"rate({sel(histogram, '_bucket')}[$__rate_interval])"
    return f"histogram_quantile({q}, sum by (le) ({buckets}))"


# -- panels ------------------------------------------------------------------------
@dataclass
class Target:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass
class Panel:
    title: str
    targets: list[Target]
    unit: str = "short"
    kind: str = "timeseries"  # or "table"
    description: str = ""
    bars: list[str] = field(default_factory=list)  # legends drawn as bars on a right axis


def quantiles(histogram: Histogram) -> list[Target]:
    return [Target(quantile(q, histogram), f"p{round(q * 100)}") for q in QUANTILES]


def rows() -> list[tuple[str, list[Panel]]]:
    """The dashboard: (row title, its panels), top to bottom."""
    live = "avg by (list) ({})"
    return [
        (
            "Throughput",
            [
                Panel(
                    "Events consumed /s, by type",
                    [Target(rate(m.EVENTS_CONSUMED, "event_type"), "{{event_type}}")],
                    "ops",
                ),
                Panel(
                    "Recommendations and dead letters published /s",
                    [
                        Target(rate(m.RECOMMENDATIONS), "recommendations"),
                        Target(rate(m.DLQ_MESSAGES), "dead letters"),
                        Target(rate(m.REROUTED), "forwarded to owner"),
                    ],
                    "ops",
                ),
                Panel(
                    "Users held in state",
                    [
                        Target(f"sum ({sel(m.STATE_USERS)})", "users"),
                        Target(f"sum by (instance) ({sel(m.STATE_USERS)})", "{{instance}}"),
                    ],
                ),
            ],
        ),
        (
            "Latency",
            [
                Panel(
                    "Event ts -> recommendation published",
                    quantiles(m.EVENT_TO_PUBLISH),
                    "s",
                    description="From the event's own timestamp (producer clock) to publishing.",
                ),
                Panel(
                    "Consumed -> recommendation published",
                    quantiles(m.CONSUME_TO_PUBLISH),
                    "s",
                    description="Time inside the worker: state, scoring, re-ranking, publish.",
                ),
                Panel(
                    "Events in flight",
                    [Target(f"sum ({sel(m.IN_FLIGHT)})", "in flight")],
                    description="Consumed, not yet published (model path; 0 on the Markov path).",
                ),
            ],
        ),
        (
            "Errors and dead letters",
            [
                Panel(
                    "Invalid events /s, by reason",
                    [Target(rate(m.INVALID_EVENTS, "reason"), "{{reason}}")],
                    "ops",
                ),
                Panel(
                    "Replayed events, expired and erased users /s",
                    [
                        Target(rate(m.DUPLICATES), "replayed (already applied)"),
                        Target(rate(m.USERS_EXPIRED), "users expired"),
                        Target(rate(m.USERS_ERASED), "users erased (forget)"),
                    ],
                    "ops",
                ),
            ],
        ),
        (
            "Consumer lag and state restore",
            [
                Panel(
                    "Consumer lag, by input partition",
                    [Target(f"sum by (partition) ({sel(m.CONSUMER_LAG)})", "p{{partition}}")],
                    description="End offset minus committed offset, sampled by the owner.",
                ),
                Panel(
                    "State restores",
                    [
                        Target(
                            f"sum by (instance) (increase({sel(m.STATE_RESTORE, '_count')}"
                            "[$__rate_interval]))",
                            "restores {{instance}}",
                        ),
                        Target(
                            f"{sel(m.STATE_RESTORE, '_sum')} / {sel(m.STATE_RESTORE, '_count')}",
                            "mean s {{instance}}",
                        ),
                    ],
                    description="Partition assignment -> tables restored from the changelogs.",
                ),
            ],
        ),
        (
            "Micro-batcher (served model)",
            [
                Panel(
                    "Batch size",
                    [Target(quantile(q, m.BATCH_SIZE), f"p{round(q * 100)}") for q in QUANTILES],
                ),
                Panel(
                    "Queue wait and inference time (p50, p99)",
                    [
                        Target(quantile(0.5, m.BATCH_QUEUE_WAIT), "queue wait p50"),
                        Target(quantile(0.99, m.BATCH_QUEUE_WAIT), "queue wait p99"),
                        Target(quantile(0.5, m.BATCH_INFERENCE), "inference p50"),
                        Target(quantile(0.99, m.BATCH_INFERENCE), "inference p99"),
                    ],
                    "s",
                ),
                Panel(
                    "Queue depth",
                    [Target(f"sum ({sel(m.BATCH_QUEUE_DEPTH)})", "waiting for a batch")],
                ),
            ],
        ),
        (
            "Model and live quality",
            [
                Panel(
                    "Model serving",
                    [
                        Target(
                            f"max by (instance, name, version, device) ({sel(m.MODEL)})",
                            instant=True,
                        )
                    ],
                    kind="table",
                ),
                Panel(
                    "Hot reloads and adjuster",
                    [
                        Target(
                            f"sum by (result) (increase({sel(m.MODEL_RELOADS)}[$__rate_interval]))",
                            "reloads {{result}}",
                        ),
                        Target(
                            f"sum (increase({sel(m.ADJUSTER_RESETS)}[$__rate_interval]))",
                            "adjuster resets",
                        ),
                        Target(f"sum ({sel(m.ADJUSTER_EXAMPLES)})", "examples learned"),
                    ],
                    bars=["examples learned"],
                ),
                Panel(
                    "Live HR@10: adjusted vs base, drift",
                    [
                        Target(live.format(sel(m.LIVE_WINDOW, metric="HR@10")), "{{list}}"),
                        Target(
                            "sum by (signal) "
                            f"(increase({sel(m.DRIFT_DETECTIONS)}[$__rate_interval]))",
                            "drift {{signal}}",
                        ),
                    ],
                    "percentunit",
                    description="Prequential, last 1,000 evaluated events; bars: drift detected.",
                    bars=["drift hit_rate", "drift loss"],
                ),
                Panel(
                    "Live NDCG@10: adjusted vs base",
                    [Target(live.format(sel(m.LIVE_WINDOW, metric="NDCG@10")), "{{list}}")],
                    "percentunit",
                ),
                Panel(
                    "Purchase propensity: live quality",
                    [
                        Target(
                            f"avg by (metric) ({sel(m.PURCHASE_QUALITY, window='last_1000')})",
                            "{{metric}}",
                        )
                    ],
                    description="Prequential, each worker's last 1,000 predictions of "
                    "'the next event is a purchase' (averaged over workers); "
                    "brier is the mean squared error of the probability.",
                ),
            ],
        ),
        trainer_row(),
        (
            "Process resources",
            [
                Panel(
                    "Workers up (scraped)",
                    [Target(f"sum ({sel('up', job='streamrec')})", "up")],
                    description="Workers whose /metrics Prometheus could scrape.",
                ),
                Panel(
                    "CPU (cores)",
                    [Target(rate("process_cpu_seconds", "instance", "_total"), "{{instance}}")],
                ),
                Panel(
                    "Resident memory",
                    [
                        Target(
                            f"sum by (instance) ({sel('process_resident_memory_bytes')})",
                            "{{instance}}",
                        )
                    ],
                    "bytes",
                ),
                Panel(
                    "Open file descriptors",
                    [Target(f"sum by (instance) ({sel('process_open_fds')})", "{{instance}}")],
                ),
            ],
        ),
    ]


def trainer_row() -> tuple[str, list[Panel]]:
    """The continual trainer (``streamrec trainer``): its own process, its own series."""
    holdout = f"avg by (model, metric) ({sel(tm.HOLDOUT)})"
    return (
        "Continual trainer",
        [
            Panel(
                "Served model age",
                [Target(f"min ({sel(tm.MODEL_AGE)})", "age")],
                "s",
                description="Since the checkpoint the trainer holds as current was written.",
            ),
            Panel(
                "Rounds: promoted, rejected",
                [
                    Target(
                        f"sum by (result) (increase({sel(tm.ROUNDS)}[$__rate_interval]))",
                        "{{result}}",
                    )
                ],
                description="Rejected candidates stay in $STREAMREC_TRAINER_DIR/rejected.",
            ),
            Panel(
                "Holdout quality: candidate vs current",
                [Target(holdout, "{{model}} {{metric}}")],
                "percentunit",
                description="Last round, on the most recent events held out of training.",
            ),
            Panel(
                "Last round: seconds and examples",
                [
                    Target(f"max ({sel(tm.TRAIN_SECONDS)})", "seconds"),
                    Target(f"max ({sel(tm.TRAIN_EXAMPLES)})", "examples"),
                ],
                bars=["examples"],
            ),
            Panel(
                "Vocabulary and window",
                [
                    Target(f"max ({sel(tm.VOCAB_ITEMS)})", "items in the model"),
                    Target(f"max ({sel(tm.WINDOW_EVENTS)})", "events in the window"),
                    Target(f"max ({sel(tm.WINDOW_USERS)})", "users in the window"),
                    Target(rate(tm.EVENTS), "events in /s"),
                ],
                bars=["events in /s"],
            ),
        ],
    )


# -- Grafana JSON ------------------------------------------------------------------
def _panel_json(panel: Panel, pid: int, x: int, y: int, w: int, h: int) -> dict[str, Any]:
    targets = []
    for i, t in enumerate(panel.targets):
        target: dict[str, Any] = {
            "datasource": DATASOURCE,
            "refId": chr(ord("A") + i),
            "expr": t.expr,
            "legendFormat": t.legend or "__auto",
            "range": not t.instant,
            "instant": t.instant,
        }
        if panel.kind == "table":
            target["format"] = "table"
        targets.append(target)
    overrides = [
        {
            "matcher": {"id": "byName", "options": legend},
            "properties": [
                {"id": "custom.drawStyle", "value": "bars"},
                {"id": "custom.axisPlacement", "value": "right"},
                {"id": "unit", "value": "short"},
            ],
        }
        for legend in panel.bars
    ]
    out: dict[str, Any] = {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": overrides},
    }
    if panel.kind == "timeseries":
        out["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    else:
        out["transformations"] = [
            {
                "id": "organize",
                "options": {"excludeByName": {"Time": True, "Value": True, "__name__": True}},
            }
        ]
    return out


def build() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y, pid = 0, 1
    for title, row in rows():
        panels.append(
            {
                "id": pid,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        pid, y = pid + 1, y + 1
        w = 24 // len(row)
        for i, panel in enumerate(row):
            panels.append(_panel_json(panel, pid, i * w, y, w, 8))
            pid += 1
        y += 8
    instance = {
        "name": "instance",
        "label": "worker",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": f"label_values({name(m.EVENTS_CONSUMED)}, instance)", "refId": "I"},
        "definition": f"label_values({name(m.EVENTS_CONSUMED)}, instance)",
        "refresh": 2,  # on time range change: a new replica shows up
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }
    return {
        "uid": "streamrec",
        "title": "streamrec",
        "description": "Generated by scripts/dashboard.py from stream_app/monitoring.py; do not edit.",  # noqa: E501
        "tags": ["streamrec", "kafka", "faust"],
        "editable": False,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-30m", "to": "now"},
        "refresh": "10s",
        "timezone": "utc",
        "templating": {"list": [instance]},
        "annotations": {"list": []},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard's panels."""
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed JSON is stale")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        stale = not OUT.exists() or OUT.read_text() != text
        print(f"{OUT} is {'stale: run python -m scripts.dashboard' if stale else 'up to date'}")
        return int(stale)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(expressions(build()))} queries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
