"""Soak test: a steady load, warm-up and then M minutes, sampling the worker's memory.

Runs the embedded broker (unless STREAMREC_KAFKA_BOOTSTRAP is set), one worker
with the Markov scorer and the adjuster (default caches), and a producer
replaying a click log in a loop at a steady rate: the Taobao slice by default,
each pass under fresh user ids (``--fresh-users``: new users keep arriving, as
in production) with idle-user expiry on (``--user-ttl-s``, swept every
``--sweep-s``), so the users table levels off where expiry balances arrivals.
Every ``--every`` s it samples the worker's RSS, its table sizes and its caches
(``GET /tables/``: RocksDB's shared cache, the Markov read cache, the
adjuster's per-user lists). Writes ``results/soak.json`` and ``results/soak.png``.
Warm-up is one full pass, and at least TTL + two sweeps (expiry has begun);
without fresh users, until the table sizes stop changing. The headline figure
is RSS growth from the end of warm-up to the end, ``--minutes`` later.

    .venv/bin/python scripts/soak.py --minutes 30 --rate 150
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tqdm import tqdm

from stream_app.harness import Stack, broker_settings, isolated_env
from stream_app.kafka import clients
from stream_app.kafka.producer import Pacer, dataset_events, send_event
from stream_app.processes import WorkerProcess
from stream_app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared/datasets"
DEFAULT_DATASET = DATASETS / "taobao-userbehavior/timeslice_20171126.csv.gz"

# (user, item, event type, category or None), in the log's order.
Row = tuple[str, str, str, str | None]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def tables(web_port: str) -> dict[str, Any]:
    """The worker's table sizes, RocksDB memory and caches (``GET /tables/``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/tables/", timeout=30) as r:
        return json.loads(r.read())


def replayed(path: Path | None) -> list[Row]:
    """The log's events (a generated stream when ``path`` is absent)."""
    found = path if path is not None and path.exists() else None
    return [(u, i, e, c) for u, i, e, _, c in dataset_events(found)]


def passes(events: list[Row], fresh_users: bool) -> Any:
    """The log in a loop; with ``fresh_users`` pass n renames user u to ``u~n``."""
    for n in itertools.count():
        for user, item, event_type, category in events:
            yield (f"{user}~{n}" if fresh_users else user), item, event_type, category


async def load(
    settings: Settings,
    stream: Any,
    rate: float,
    done: asyncio.Event,
    bar: tqdm,
) -> int:
    producer = clients.producer(settings)  # security from the settings, like every client
    await producer.start()
    sent, pacer = 0, Pacer(rate)
    try:
        while not done.is_set():
            await pacer.tick()
            user, item, event_type, category = next(stream)
            await send_event(
                producer,
                settings.input_topic,
                user,
                item,
                event_type,
                f"soak-{sent}",
                category=category,
            )
            sent += 1
            bar.update(1)
    finally:
        await producer.stop()
    return sent


def snapshot(worker: WorkerProcess, t: float) -> dict[str, Any]:
    """One sample: RSS, and what the worker's ``/tables/`` answers (if it does)."""
    assert worker.proc is not None
    row: dict[str, Any] = {"t": round(t, 1), "rss_bytes": rss_bytes(worker.proc.pid)}
    with contextlib.suppress(OSError, ValueError):
        answer = tables(worker.env["STREAMREC_WEB_PORT"])
        row["tables"] = answer["tables"]
        # The shared cache, which also pays for the memtables (charged to it).
        row["rocksdb_bytes"] = answer.get("rocksdb_bytes", {}).get("block_cache", 0)
        row["caches"] = answer.get("caches", {})
    return row


async def sample(
    worker: WorkerProcess,
    every: float,
    warm_s: float,
    measure_s: float,
    limit_s: float,
    settle: bool,
    done: asyncio.Event,
    out: list[dict[str, Any]],
) -> float | None:
    """Sample every ``every`` s. Warm-up ends once ``warm_s`` have passed and, with
    ``settle``, the table sizes stop changing (the worker has caught up with every
    user and item); then ``measure_s`` more are sampled. Returns when warm-up ended
    (None: never, within ``limit_s``)."""
    start = time.monotonic()
    warm_end: float | None = None
    while True:
        t = time.monotonic() - start
        row = await asyncio.to_thread(snapshot, worker, t)
        previous = out[-1].get("tables") if out else None
        out.append(row)
        if warm_end is None and t >= warm_s and "tables" in row:
            if not settle:
                warm_end = row["t"]
            elif row["tables"] == previous:
                warm_end = out[-2]["t"]  # unchanged since the previous sample
        if (warm_end is not None and t - warm_end >= measure_s) or t >= limit_s:
            done.set()
            return warm_end
        await asyncio.sleep(every)


def tables_final_from(samples: list[dict[str, Any]]) -> float | None:
    """When the table sizes last changed: from then on they equal their final size."""
    final = samples[-1].get("tables") if samples else None
    t = None
    for s in reversed(samples):
        if s.get("tables") != final:
            break
        t = s["t"]
    return t


def plot(samples: list[dict[str, Any]], warmup_s: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t"] / 60 for s in samples]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    ax[0].plot(t, [s["rss_bytes"] / 2**20 for s in samples], label="RSS")
    if any("rocksdb_bytes" in s for s in samples):
        ax[0].plot(
            t,
            [(s["rss_bytes"] - s.get("rocksdb_bytes", 0)) / 2**20 for s in samples],
            label="RSS - RocksDB caches and memtables",
        )
        ax[0].plot(
            t, [s.get("rocksdb_bytes", 0) / 2**20 for s in samples], label="RocksDB shared cache"
        )
    for a in ax:
        a.axvline(warmup_s / 60, color="grey", linestyle="--", label="end of warm-up")
    ax[0].set(xlabel="minutes", ylabel="MiB", title="worker memory")
    for name in ("users", "items", "feedback"):
        ax[1].plot(t, [s.get("tables", {}).get(name, float("nan")) for s in samples], label=name)
    ax[1].set(xlabel="minutes", ylabel="keys", title="table sizes")
    names = sorted({k for s in samples for k in s.get("caches", {})})
    for name in names:
        ax[2].plot(t, [s.get("caches", {}).get(name, float("nan")) for s in samples], label=name)
    ax[2].set(xlabel="minutes", ylabel="entries", title="in-memory caches")
    for a in ax:
        a.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30, help="measured minutes after warm-up")
    ap.add_argument("--rate", type=float, default=150)
    ap.add_argument("--every", type=float, default=10, help="seconds between samples")
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="replayed log")
    ap.add_argument(
        "--fresh-users",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="each pass under new user ids",
    )
    ap.add_argument("--user-ttl-s", type=float, default=300, help="idle users forgotten after")
    ap.add_argument("--sweep-s", type=float, default=60, help="idle-user sweep interval")
    ap.add_argument(
        "--max-warmup-passes",
        type=float,
        default=3,
        help="give up waiting for the tables to stop changing after this many passes",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "results/soak.json")
    return ap.parse_args()


def wait_answering(worker: WorkerProcess, timeout: float = 120.0) -> None:
    """Until the worker answers ``/tables/`` (its log, at level warn, says nothing)."""
    deadline = time.monotonic() + timeout
    while "tables" not in snapshot(worker, 0.0):
        if not worker.running or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start:\n{worker.log_tail(40)}")
        time.sleep(1)


def soak(args: argparse.Namespace, events: list[Row], warm_s: float) -> dict[str, Any]:
    """Broker, one worker and the load; what :func:`main` reports of the run."""
    base = broker_settings(19292)
    measure = args.minutes * 60
    limit = args.max_warmup_passes * warm_s + measure
    samples: list[dict[str, Any]] = []
    env = isolated_env(
        "soak",
        web_port=os.environ.get("STREAMREC_WEB_PORT", "16999"),
        metrics_port=os.environ.get("STREAMREC_METRICS_PORT", "16998"),
        log_level="warn",
        user_ttl_s=args.user_ttl_s,
        sweep_interval_s=args.sweep_s,
    )
    with tempfile.TemporaryDirectory() as tmp, Stack(env, Path(tmp), cwd=ROOT) as stack:
        stack.use_broker(base)
        stack.create_topics()
        settings = stack.settings
        worker = stack.worker("worker", ports=False).start()
        try:
            wait_answering(worker)

            async def run() -> tuple[int, float | None]:
                done = asyncio.Event()
                settle = not args.fresh_users
                sampler = asyncio.create_task(
                    sample(worker, args.every, warm_s, measure, limit, settle, done, samples)
                )
                expected = int((warm_s + measure) * args.rate)
                stream = passes(events, args.fresh_users)
                with tqdm(total=expected, desc="soak", unit="ev", mininterval=30) as bar:
                    sent = await load(settings, stream, args.rate, done, bar)
                return sent, await sampler

            sent, warm_end = asyncio.run(run())
        finally:
            alive = worker.running
            if not alive:
                print(f"the worker died:\n{worker.log_tail(40)}")
    return {"sent": sent, "warm_end": warm_end, "alive": alive, "samples": samples}


def growth(after: list[dict[str, Any]], value: Any) -> float | None:
    """Relative change of ``value(sample)`` from the first to the last sample."""
    return value(after[-1]) / value(after[0]) - 1 if len(after) > 1 else None


def main() -> int:
    args = parse_args()
    events = replayed(args.dataset)
    one_pass = len(events) / args.rate  # every user and item sent once
    warm_s = max(one_pass, args.user_ttl_s + 2 * args.sweep_s) if args.fresh_users else one_pass
    run = soak(args, events, warm_s)
    samples, warm_end = run["samples"], run["warm_end"]
    warm = warm_end if warm_end is not None else float("inf")
    after = [s for s in samples if s["t"] >= warm]
    rss = growth(after, lambda s: s["rss_bytes"])
    report = {
        "minutes": args.minutes,
        "rate": args.rate,
        "dataset": str(args.dataset),
        "fresh_users": args.fresh_users,
        "user_ttl_s": args.user_ttl_s,
        "sweep_interval_s": args.sweep_s,
        "events_sent": run["sent"],
        "events_per_pass": len(events),
        "worker_alive_at_end": run["alive"],
        "warmup_s": warm_end,
        "measured_s": (after[-1]["t"] - after[0]["t"]) if len(after) > 1 else 0,
        "tables_final_from_s": tables_final_from(samples),
        "rss_growth_after_warmup": rss,
        # RocksDB's caches and memtables fill up to their configured bounds slowly
        # (compactions write new blocks); the rest of the worker is what could leak.
        "rss_outside_rocksdb_growth_after_warmup": growth(
            after, lambda s: s["rss_bytes"] - s.get("rocksdb_bytes", 0)
        ),
        "rss_max_after_warmup_bytes": max((s["rss_bytes"] for s in after), default=None),
        "tables_after_warmup": [after[0].get("tables"), after[-1].get("tables")] if after else [],
        "samples": samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    plot(samples, warm_end or 0.0, args.out.with_suffix(".png"))
    print(f"RSS growth after warm-up: {rss:.1%}" if rss is not None else "too few samples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
