"""The Grafana dashboard is generated from the metric objects and only names exported metrics."""

from __future__ import annotations

import json
import re

import prometheus_client

from scripts import dashboard
from scripts.plot_dashboard import COMPOSE_CONFIG, local_config, promtool
from stream_app import monitoring  # noqa: F401  (registers the worker's metrics)
from stream_app.trainer import telemetry  # noqa: F401  (and the trainer's)

METRIC_NAME = re.compile(r"\b((?:streamrec|process|python)_[a-z0-9_]+)\b")


SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def exported_sample_names() -> set[str]:
    """Every sample name a worker's /metrics can show (default collectors included),
    also for labelled metrics that have no series yet."""
    names = set()
    for fam in prometheus_client.REGISTRY.collect():
        names.update(s.name for s in fam.samples)
        names.update(fam.name + suffix for suffix in SUFFIXES.get(fam.type, ()))
    return names


def test_committed_dashboard_is_the_generators_output() -> None:
    assert json.loads(dashboard.OUT.read_text()) == dashboard.build()
    assert dashboard.OUT.read_text() == dashboard.render()


def test_every_queried_metric_is_exported() -> None:
    exported = exported_sample_names()
    exprs = dashboard.expressions(dashboard.build())
    names = {n for e in exprs for n in METRIC_NAME.findall(e)}
    assert len(names) >= 25
    assert names <= exported, sorted(names - exported)
    variable = dashboard.build()["templating"]["list"][0]["definition"]
    assert set(METRIC_NAME.findall(variable)) <= exported


def test_queries_follow_the_dashboard_conventions() -> None:
    for expr in dashboard.expressions(dashboard.build()):
        for selector in re.findall(r"[a-z_]+\{[^}]*\}", expr):
            assert 'instance=~"$instance"' in selector, expr
        if "rate(" in expr or "increase(" in expr:
            assert "[$__rate_interval]" in expr, expr
        if "_bucket" in expr:
            assert expr.startswith("histogram_quantile(") and "sum by (le)" in expr, expr


def test_every_panel_uses_the_provisioned_datasource() -> None:
    provisioned = dashboard.ROOT / "docker/grafana/provisioning/datasources/prometheus.yml"
    assert f"uid: {dashboard.DATASOURCE_UID}" in provisioned.read_text()
    for panel in dashboard.build()["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == dashboard.DATASOURCE_UID
            assert all(t["datasource"]["uid"] == dashboard.DATASOURCE_UID for t in panel["targets"])


def test_no_label_holds_an_id() -> None:
    """Label names come from a fixed set: never a user, item or event id."""
    allowed = {"event_type", "reason", "result", "signal", "list", "metric", "partition", "window"}
    allowed.add("model")  # the trainer's holdout quality: candidate or current
    for fam in prometheus_client.REGISTRY.collect():
        if fam.name.startswith("streamrec_") and fam.type != "info":
            for sample in fam.samples:
                assert set(sample.labels) - {"le"} <= allowed, (fam.name, sample.labels)


def test_prometheus_configs_are_valid(tmp_path) -> None:  # type: ignore[no-untyped-def]
    check = promtool("check", "config", str(COMPOSE_CONFIG))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "job_name: streamrec" in COMPOSE_CONFIG.read_text()
    local = tmp_path / "prometheus.yml"
    local.write_text(json.dumps(local_config(["127.0.0.1:9464"], 1.0)))
    check = promtool("check", "config", str(local))
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_metric_is_documented() -> None:
    readme = (dashboard.ROOT / "docs" / "operations" / "observability.md").read_text()
    families = [f for f in prometheus_client.REGISTRY.collect() if f.name.startswith("streamrec")]
    names = [f.name + {"counter": "_total", "info": "_info"}.get(f.type, "") for f in families]
    assert [n for n in names if f"`{n}`" not in readme] == []
