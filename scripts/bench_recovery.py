"""Recovery at scale: how long a worker that lost its local state takes to serve again.

Runs the embedded broker (unless STREAMREC_KAFKA_BOOTSTRAP is set) and one worker
(RocksDB store), and builds state for ``--users`` users through it: each user
sends ``--events-per-user`` events over a catalogue of ``--items`` items, so the
users table, the Markov rows and the adjuster's open feedback lists all fill.
Then, for each case, the worker is stopped and started again, and the time
from its start until it serves again is measured: until it logs "Worker ready"
(tables restored, input resumed) and until the recommendation of a probe event,
sent as it starts, arrives (state restored *and* used: the probe's user must
come back with its full history).

  intact  SIGTERM, restart with the local RocksDB state (reads only the tail)
  moved   SIGTERM, local state deleted, restart: every table restored from its
          changelog topic (partitions moved to a new host in an orderly way)
  wiped   kill -9, local state deleted, restart: the same after a crash that took
          the disk; a static member (the default) takes the dead one's place at once,
          a dynamic one first waits for the dead member's session to expire

Writes ``results/recovery.json``; the headline is seconds per 100,000 users for
the wiped case.

    .venv/bin/python scripts/bench_recovery.py --users 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aiokafka.structs import TopicPartition

from stream_app.harness import Stack, isolated_env, local_broker_settings
from stream_app.kafka import clients
from stream_app.kafka.producer import InFlight, send_event
from stream_app.processes import WorkerProcess
from stream_app.serializers import decode_value
from stream_app.settings import Settings
from stream_app.topology import TABLES

ROOT = Path(__file__).resolve().parents[1]
EVENT_TYPES = ("view", "click", "view", "add_to_cart", "purchase")


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True)
    return out.stdout.decode().strip()


def web(worker: WorkerProcess, path: str, retry_s: float = 120.0) -> dict[str, Any]:
    """GET ``path`` of the worker's web port; a 503 (partition being rebalanced or
    restored) is retried for up to ``retry_s``, and logged: it means a rebalance after
    the worker had served."""
    url = f"http://127.0.0.1:{worker.env['STREAMREC_WEB_PORT']}{path}"
    deadline = time.monotonic() + retry_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=120) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() > deadline:
                raise
            print(f"{path}: 503 ({exc.read().decode(errors='replace')}), retrying", flush=True)
            time.sleep(1)


async def end_offsets(settings: Settings, topics: list[str]) -> dict[str, int]:
    """Records per topic (the sum of its partitions' end offsets)."""
    consumer = clients.consumer(settings)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
        ends = await consumer.end_offsets(tps)
        return {t: sum(n for tp, n in ends.items() if tp.topic == t) for t in topics}
    finally:
        await consumer.stop()


async def build(settings: Settings, users: int, per_user: int, items: int) -> int:
    """Send every user's events, round by round (users interleaved, as live traffic)."""
    producer = clients.producer(settings, linger_ms=20)
    await producer.start()
    sent, in_flight = 0, InFlight(5000)
    try:
        for r in range(per_user):
            for u in range(users):
                item = f"i{(u * 7 + r * 131) % items}"
                etype = EVENT_TYPES[(u + r) % len(EVENT_TYPES)]
                await in_flight.add(
                    await send_event(
                        producer, settings.input_topic, f"u{u}", item, etype, f"b{sent}"
                    )
                )
                sent += 1
        await in_flight.drain()
    finally:
        await producer.stop()
    return sent


def wait_processed(settings: Settings, n: int, timeout: float) -> float:
    """Until the output topic holds ``n`` recommendations; returns the seconds waited."""
    start = time.monotonic()
    while asyncio.run(end_offsets(settings, [settings.output_topic]))[settings.output_topic] < n:
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"fewer than {n} recommendations after {timeout:.0f} s")
        time.sleep(2)
    return time.monotonic() - start


async def probe(settings: Settings, user: str, item: str, event_id: str) -> float:
    """Send one event for ``user`` now; return when its recommendation came back
    (seconds after sending), checking it was made from the user's restored history."""
    consumer = clients.consumer(settings, settings.output_topic, auto_offset_reset="latest")
    await consumer.start()
    producer = clients.producer(settings)
    await producer.start()
    try:
        await consumer.seek_to_end()
        await asyncio.sleep(0.5)  # the end positions are fetched before the probe lands
        sent = time.monotonic()
        await (await send_event(producer, settings.input_topic, user, item, "click", event_id))
        while True:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    rec = decode_value(r.value)
                    if rec["source_event_id"] == event_id:
                        if len(rec["influences"]) < 2:
                            raise AssertionError(f"{user} came back without its history: {rec}")
                        return time.monotonic() - sent
    finally:
        await producer.stop()
        await consumer.stop()


def phases(log: str) -> dict[str, float]:
    """Seconds from the worker's first log line to Faust's recovery milestones."""
    from datetime import datetime

    marks = {
        "joined_group": "Joined group",
        "bulk_restored": "bulk-restored",
        "restoring": "Restoring state from changelog topics",
        "read_done": "Done reading from changelog topics",
        "recovery_complete": "Recovery complete",
        "ready": "Worker ready",
    }
    lines = [ln for ln in log.splitlines() if ln[:4].isdigit()]

    def at(line: str) -> float:
        return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()

    if not lines:
        return {}
    first = at(lines[0])
    out: dict[str, float] = {}
    for name, text in marks.items():
        hits = [ln for ln in lines if text in ln]
        if hits:  # the last table's bulk restore; the first of everything else
            out[name] = round(at(hits[-1] if name == "bulk_restored" else hits[0]) - first, 2)
    return out


def run_case(
    stack: Stack,
    worker: WorkerProcess,
    case: str,
    users: int,
    n: int,
    probes: int,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Stop the worker (SIGTERM, or kill -9; its state wiped unless intact), start it
    again with a probe event for a user in the middle, and time both."""
    settings = stack.settings
    if case == "wiped":
        worker.kill()
    else:
        worker.stop()
    if case in ("wiped", "moved"):
        shutil.rmtree(worker.env["STREAMREC_DATA_DIR"])
    user = f"u{users // 2}"
    log_from = worker.log_path.stat().st_size
    box: dict[str, float] = {}

    def go() -> None:
        box["served_after_send_s"] = asyncio.run(probe(settings, user, "i1", f"probe-{case}"))
        box["served_at"] = time.monotonic()

    started = time.monotonic()
    worker.start()
    thread = threading.Thread(target=go, name=f"probe-{case}")
    thread.start()
    spy = None
    if profile is not None and worker.proc is not None:
        # Collapsed stacks, or speedscope (samples in time order, idle threads too) for .json.
        fmt = ["speedscope", "--idle", "--threads"] if profile.suffix == ".json" else ["raw"]
        argv = ["py-spy", "record", "--format", *fmt, "-r", "100", "-o", str(profile)]
        spy = subprocess.Popen([*argv, "--pid", str(worker.proc.pid)])
    worker.wait_ready(timeout=1800)
    ready_s = time.monotonic() - started
    thread.join(timeout=600)
    if spy is not None:  # until the probe was served
        spy.send_signal(signal.SIGINT)  # py-spy writes its profile and exits
        spy.wait(60)
    state = web(worker, f"/state/{user}/")
    log = worker.log_path.read_bytes()[log_from:].decode(errors="replace")
    return {
        "case": case,
        "ready_s": round(ready_s, 2),
        "serves_s": round(box["served_at"] - started, 2),
        "probe_user_events": len(state["events"]),
        "probe_user_expected_events": n // users + probes,
        "faust_phases_s": phases(log),
        "tables_after": web(worker, "/tables/")["tables"],
    }


def segments(case: dict[str, Any]) -> dict[str, float]:
    """A case's time to serve again, split: process start-up (before the first log
    line), joining the group, restoring the tables, then until the probe is served."""
    p = case["faust_phases_s"]
    startup = max(0.0, case["ready_s"] - p["ready"])
    joined = p.get("joined_group", p.get("restoring", 0.0))
    restored = p["recovery_complete"]
    return {
        "start-up": startup,
        "group join": joined,
        "table restore": max(0.0, restored - joined),
        "until served": max(0.0, case["serves_s"] - startup - restored),
    }


def plot(reports: list[tuple[str, dict[str, Any]]], path: Path) -> None:
    """Horizontal bars, one per (run, case), split by :func:`segments`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(f"{label}: {c['case']}", segments(c)) for label, r in reports for c in r["cases"]]
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(rows) + 1.5))
    colours = ["#bbbbbb", "#8fb3d9", "#d9822b", "#6aa84f"]
    for i, (_, seg) in enumerate(rows):
        left = 0.0
        for (name, width), colour in zip(seg.items(), colours, strict=True):
            ax.barh(i, width, left=left, color=colour, label=name if i == 0 else None)
            left += width
        ax.text(left + 1, i, f"{left:.1f} s", va="center")
    ax.set_yticks(range(len(rows)), [name for name, _ in rows])
    ax.invert_yaxis()
    ax.set_xscale("symlog", linthresh=30)
    longest = max(sum(seg.values()) for _, seg in rows)
    ax.set_xlim(0, longest * 2)
    ax.set_xlabel("seconds from the worker's start until it serves again (symlog)")
    users = sorted({r["users"] for _, r in reports})
    ax.set_title(f"recovery of one worker, {' and '.join(f'{u:,}' for u in users)} users")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--events-per-user", type=int, default=3)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--cases", default="intact,moved,wiped")
    ap.add_argument("--out", type=Path, default=ROOT / "results/recovery.json")
    ap.add_argument(
        "--plot",
        nargs="+",
        metavar="LABEL=JSON",
        help="only draw earlier reports into --out (a PNG): LABEL=path.json ...",
    )
    ap.add_argument(
        "--profile",
        type=Path,
        help="run the restarted worker of the wiped case under py-spy: collapsed stacks "
        "here, or a speedscope timeline if the name ends in .json",
    )
    args = ap.parse_args()
    if args.plot:
        pairs = [item.split("=", 1) for item in args.plot]
        plot([(label, json.loads(Path(f).read_text())) for label, f in pairs], args.out)
        return 0
    base = local_broker_settings(kafka_bootstrap=Settings().kafka_bootstrap)
    env = isolated_env("recovery", partitions=args.partitions, log_level="info", store="rocksdb")
    with tempfile.TemporaryDirectory() as tmp, Stack(env, Path(tmp), cwd=ROOT) as stack:
        stack.use_broker(base, data_dir=Path(tmp) / "broker")
        stack.create_topics()
        settings = stack.settings
        worker = stack.worker("w").start()
        worker.wait_ready()
        t = time.monotonic()
        sent = asyncio.run(build(settings, args.users, args.events_per_user, args.items))
        wait_processed(settings, sent, timeout=7200)
        build_s = time.monotonic() - t
        tables = web(worker, "/tables/")["tables"]
        changelogs = [f"{settings.app_id}-{name}-changelog" for name in TABLES]
        records = asyncio.run(end_offsets(settings, changelogs))
        print(f"built {tables} from {sent} events in {build_s:.0f} s; changelogs {records}")
        cases = []
        try:
            for case in args.cases.split(","):
                profile = args.profile if case == "wiped" else None
                cases.append(
                    run_case(stack, worker, case, args.users, sent, len(cases) + 1, profile)
                )
                print(json.dumps(cases[-1]), flush=True)
        finally:  # the worker's log, also when a case failed
            args.out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(worker.log_path, args.out.with_suffix(".worker.log"))
    per_100k = {c["case"]: round(c["serves_s"] * 100_000 / args.users, 2) for c in cases}
    report = {
        "commit": commit(),
        "users": args.users,
        "events": sent,
        "partitions": args.partitions,
        "build_s": round(build_s, 1),
        "tables": tables,
        "changelog_records": records,
        "cases": cases,
        "serves_s_per_100k_users": per_100k,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"seconds until serving again, per 100k users: {per_100k} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
