"""Renders the Grafana dashboard's panels from a real Prometheus into one PNG.

No Grafana server is needed: the panels come from ``scripts/dashboard.py`` (the
same queries as ``docker/grafana/dashboards/streamrec.json``), with Grafana's
variables substituted (``$instance`` -> all workers, ``$__rate_interval`` ->
four scrape intervals, at least 15 s), and are drawn from Prometheus's
``query_range`` API with matplotlib.

Against a running Prometheus:

    .venv/bin/python -m scripts.plot_dashboard --url http://127.0.0.1:9090 \\
        --minutes 10 --out docs/dashboard.png

Or let it run Debian's ``prometheus`` itself (the compose config, rewritten to
scrape the given workers' metrics ports), collect for a while, then plot:

    .venv/bin/python -m scripts.plot_dashboard --scrape 127.0.0.1:9464,127.0.0.1:9465 \\
        --collect-minutes 8 --out docs/dashboard.png

:class:`LocalPrometheus` is also what ``tests/integration/test_prometheus.py`` uses.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts import dashboard
from stream_app.harness import free_port

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_CONFIG = ROOT / "docker" / "prometheus" / "prometheus.yml"
JOB = "streamrec"  # the job name of the compose config


def substitute(expr: str, rate_interval: str) -> str:
    """A dashboard query as Grafana would send it, with every worker selected."""
    return expr.replace("$__rate_interval", rate_interval).replace("$instance", ".*")


def local_config(targets: Sequence[str], scrape_interval_s: float) -> dict[str, Any]:
    """The compose config's scrape job, with static targets instead of DNS discovery.

    Prometheus reads YAML, and JSON is YAML: the dict is written with ``json``.
    """
    interval = f"{int(scrape_interval_s * 1000)}ms"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": JOB,
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``promtool ARGS`` (e.g. ``check config FILE``, ``check metrics`` with ``stdin``)."""
    return subprocess.run(
        ["promtool", *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


class LocalPrometheus:
    """Debian's ``prometheus`` on a free port, a temporary storage dir, given targets."""

    def __init__(self, targets: Sequence[str], scrape_interval_s: float = 1.0) -> None:
        if shutil.which("prometheus") is None:
            raise RuntimeError("prometheus is not installed (scripts/setup.sh installs it)")
        self.scrape_interval_s = scrape_interval_s
        self.dir = Path(tempfile.mkdtemp(prefix="streamrec-prometheus-"))
        self.config = self.dir / "prometheus.yml"
        self.config.write_text(json.dumps(local_config(targets, scrape_interval_s), indent=2))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> LocalPrometheus:
        self.log = open(self.dir / "prometheus.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                if self.proc.poll() is not None:
                    break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus did not start: {self.logs()[-2000:]}")

    def logs(self) -> str:
        path = self.dir / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if getattr(self, "log", None) is not None:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LocalPrometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def api(url: str, path: str, **params: str | float) -> Any:
    """GET a Prometheus HTTP API endpoint; its ``data`` (raises on an error status)."""
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}/api/v1/{path}?{query}", timeout=30) as resp:
        body = json.load(resp)
    if body.get("status") != "success":
        raise RuntimeError(f"{path} {params}: {body}")
    return body["data"]


def query(url: str, expr: str) -> list[dict[str, Any]]:
    """An instant query's series."""
    return list(api(url, "query", query=expr)["result"])


def query_range(url: str, expr: str, start: float, end: float, step: float) -> list[dict]:
    return list(api(url, "query_range", query=expr, start=start, end=end, step=step)["result"])


def legend(fmt: str, labels: dict[str, str]) -> str:
    if not fmt or fmt == "__auto":
        return ",".join(f"{k}={v}" for k, v in labels.items() if k != "__name__") or "value"
    out = fmt
    for k, v in labels.items():
        out = out.replace("{{" + k + "}}", v)
    return out


def plot(url: str, out: Path, minutes: float, rate_interval: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    end = time.time()
    start = end - minutes * 60
    step = max(1.0, minutes * 60 / 300)
    rows = dashboard.rows()
    ncols = max(len(panels) for _, panels in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(6 * ncols, 3.2 * len(rows)), squeeze=False)
    for r, (row_title, panels) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(panels):
                ax.axis("off")
                continue
            panel = panels[c]
            ax.set_title(f"{row_title}: {panel.title}" if c == 0 else panel.title, fontsize=9)
            if panel.kind == "table":
                _table(ax, url, panel)
                continue
            twin = ax.twinx() if panel.bars else None
            series = [
                (t, s)
                for t in panel.targets
                for s in query_range(url, substitute(t.expr, rate_interval), start, end, step)
            ]
            drawn = 0
            for t, s in series:
                xs, ys = _with_gaps(s["values"], step)
                if all(math.isnan(y) for y in ys):
                    continue  # e.g. a quantile of nothing observed (no model served)
                name = legend(t.legend, s["metric"])
                if len(series) > 3 and not any(y for y in ys if not math.isnan(y)):
                    # Many series, this one always 0 (e.g. a DLQ reason not seen): keep the
                    # legend to what happened.
                    ax.plot(xs, ys, color="0.8", linewidth=0.8, label="_nolegend_")
                elif twin is not None and name in panel.bars:
                    twin.bar(xs, ys, width=step / 86400, alpha=0.4, label=name)
                else:
                    ax.plot(xs, ys, label=name, linewidth=1.2)
                drawn += 1
            ax.set_xlim(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
            if drawn == 0:
                ax.text(
                    0.5,
                    0.5,
                    "no data (nothing observed)",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                )
            _axis_unit(ax, panel.unit)
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
            ax.tick_params(labelsize=7)
            handles, labels = ax.get_legend_handles_labels()
            if twin is not None:
                twin.tick_params(labelsize=7)
                h2, l2 = twin.get_legend_handles_labels()
                handles, labels = handles + h2, labels + l2
            if handles:
                ax.legend(handles, labels, fontsize=6, loc="upper left", ncol=2)
            ax.grid(alpha=0.3)
    stamp = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M UTC")
    fig.suptitle(
        f"streamrec dashboard (Prometheus query_range, last {minutes:g} min to {stamp}, "
        f"rate interval {rate_interval})",
        fontsize=12,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def _with_gaps(values: list[list[Any]], step: float) -> tuple[list[datetime], list[float]]:
    """Points of a range query, with a NaN where samples are missing (a worker down),
    so that the line breaks instead of bridging the gap."""
    xs: list[datetime] = []
    ys: list[float] = []
    last = None
    for ts, v in values:
        t = float(ts)
        if last is not None and t - last > 1.5 * step:
            xs.append(datetime.fromtimestamp(last + step, UTC))
            ys.append(math.nan)
        xs.append(datetime.fromtimestamp(t, UTC))
        ys.append(float(v))
        last = t
    return xs, ys


def _axis_unit(ax: Any, unit: str) -> None:
    from matplotlib.ticker import FuncFormatter

    if unit == "s":
        ax.set_ylabel("seconds", fontsize=7)
    elif unit == "ops":
        ax.set_ylabel("per second", fontsize=7)
    elif unit == "bytes":
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 2**20:.0f} MiB"))
    elif unit == "percentunit":
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.1%}"))


def _table(ax: Any, url: str, panel: dashboard.Panel) -> None:
    ax.axis("off")
    lines = []
    for t in panel.targets:
        for s in query(url, substitute(t.expr, "1m")):
            labels = s["metric"]
            lines.append(
                f"{labels.get('instance', '?')}: {labels.get('name')} "
                f"{labels.get('version')} on {labels.get('device')}"
            )
    ax.text(0.02, 0.9, "\n".join(lines) or "no data", va="top", fontsize=8, family="monospace")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running Prometheus (default: start one, see --scrape)")
    ap.add_argument("--scrape", help="host:port,... of worker metrics to scrape")
    ap.add_argument("--collect-minutes", type=float, default=5.0)
    ap.add_argument("--scrape-interval", type=float, default=1.0)
    ap.add_argument("--minutes", type=float, help="time range plotted (default: collected)")
    ap.add_argument("--rate-interval", default="15s")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    args = ap.parse_args(argv)
    if args.url:
        plot(args.url, args.out, args.minutes or 10, args.rate_interval)
    elif args.scrape:
        with LocalPrometheus(args.scrape.split(","), args.scrape_interval) as prom:
            print(f"prometheus at {prom.url}; collecting for {args.collect_minutes:g} min")
            time.sleep(args.collect_minutes * 60)
            plot(prom.url, args.out, args.minutes or args.collect_minutes, args.rate_interval)
    else:
        ap.error("give --url or --scrape")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
