"""Chaos harness: count every event across restarts, crashes, rebalances and
broker outages.

Each scenario runs on its own topics: an embedded broker, two workers in one
group, a producer sending N events (unique ``event_id``s, many users) at a
steady rate, and one disruption a third of the way in:

  a  SIGTERM one worker, then restart it
  b  kill -9 one worker, then restart it with its state directory wiped
  c  add a third worker, then remove it (two rebalances)
  d  stop the broker for --outage seconds, then start it again

It then reports, per scenario: events sent, events with no recommendation,
duplicate recommendations, and users whose final state (asked through
``GET /state/<user>/``, as ``streamrec state`` does) differs from the last
events sent to them. Results go to ``results/chaos.json``.

    .venv/bin/python scripts/chaos.py --events 20000 --rate 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
from tqdm import tqdm

from stream_app.harness import Stack, isolated_env, local_broker_settings
from stream_app.kafka import clients
from stream_app.kafka.broker import EmbeddedBroker
from stream_app.kafka.producer import InFlight, Pacer, send_event
from stream_app.processes import WorkerProcess
from stream_app.query import fetch_state
from stream_app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("a", "b", "c", "d")


@dataclass
class Cluster:
    """A broker (ours or given) plus the named workers of one scenario."""

    base: Settings
    workdir: Path
    stack: Stack
    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def isolated(cls, base: Settings, workdir: Path, prefix: str) -> Cluster:
        """A scenario's cluster on fresh topics (``prefix``: of its app id)."""
        env = isolated_env(prefix, partitions=4, log_level="info")
        return cls(base, workdir, Stack(env, workdir, cwd=ROOT))

    @property
    def broker(self) -> EmbeddedBroker | None:
        return self.stack.broker

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    def stop_worker(self, name: str) -> None:
        """SIGTERM; a worker still up 30 s later is killed, which the report notes
        (its in-flight events may then be recommended twice, as after kill -9)."""
        if self.workers[name].stop(timeout=30) == -9:
            self.notes.append(f"{name} ignored SIGTERM for 30 s and was killed")

    def start(self) -> None:
        self.stack.use_broker(self.base, data_dir=self.workdir / "broker")
        self.stack.create_topics()

    def worker(self, name: str) -> WorkerProcess:
        """The worker ``name``; the same one (state directory, ports) when restarted."""
        w = self.workers.get(name)
        if w is None:
            w = self.workers[name] = self.stack.worker(name)
        return w

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.workers[name].env['STREAMREC_WEB_PORT']}"

    def stop(self) -> None:
        self.stack.stop()


async def produce(
    settings: Settings, n: int, rate: float, users: int, progress: tqdm
) -> dict[str, list[str]]:
    """Send n events at ``rate``/s; return each user's items in sending order."""
    producer = clients.producer(settings, request_timeout_ms=120_000, retry_backoff_ms=500)
    await producer.start()
    sent: dict[str, list[str]] = {}
    pacer, in_flight = Pacer(rate), InFlight(500)
    try:
        for i in range(n):
            await pacer.tick()
            user = f"user{(i * 7919) % users}"
            item = f"item{i}"
            await in_flight.add(
                await send_event(producer, settings.input_topic, user, item, "click", f"ev{i}")
            )
            sent.setdefault(user, []).append(item)
            progress.update(1)
        await in_flight.drain()
    finally:
        await producer.stop()
    return sent


async def collect(settings: Settings, n: int, idle: float) -> list[str]:
    """All source_event_ids on the output topic, until n distinct seen and idle s of quiet."""
    consumer = clients.consumer(settings, settings.output_topic)
    await consumer.start()
    ids: list[str] = []
    distinct: set[str] = set()
    last = time.monotonic()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    eid = msgpack.unpackb(r.value)["source_event_id"]
                    ids.append(eid)
                    distinct.add(eid)
                last = time.monotonic()
            quiet = time.monotonic() - last
            if (len(distinct) >= n and quiet > 3) or quiet > idle:
                return ids
    finally:
        await consumer.stop()


def disrupt(scenario: str, cluster: Cluster, outage: float) -> Callable[[], None]:
    """The disruption of a scenario, as a blocking function."""

    def a() -> None:
        cluster.stop_worker("w1")
        time.sleep(2)
        cluster.worker("w1").start()

    def b() -> None:
        cluster.workers["w1"].kill()
        shutil.rmtree(cluster.workdir / "w1", ignore_errors=True)
        time.sleep(2)
        cluster.worker("w1").start()

    def c() -> None:
        cluster.worker("w3").start()
        time.sleep(15)
        cluster.stop_worker("w3")

    def d() -> None:
        assert cluster.broker is not None, "scenario d needs the embedded broker"
        cluster.broker.stop()
        time.sleep(outage)
        cluster.broker.start()

    return {"a": a, "b": b, "c": c, "d": d}[scenario]


def check_states(
    cluster: Cluster, sent: dict[str, list[str]], history: int
) -> list[dict[str, Any]]:
    """The users whose state differs from the last ``history`` items sent to them,
    with what was expected and what the owning worker answered."""
    live = [n for n, w in cluster.workers.items() if w.running]
    if not live:
        raise RuntimeError("no worker is running to ask for state")
    wrong = []
    for user, items in sent.items():
        doc = fetch_state(cluster.url(live[0]), user)
        got = [e["item_id"] for e in doc["events"]]
        if got != items[-history:]:
            wrong.append({"user": user, "expected": items[-history:], **doc, "events": got})
    return wrong


def run_scenario(
    scenario: str,
    base: Settings,
    events: int,
    rate: float,
    users: int,
    outage: float,
    keep: Path | None = None,
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"chaos-{scenario}-"))
    cluster = Cluster.isolated(base, workdir, f"chaos-{scenario}")
    try:
        cluster.start()
        for name in ("w0", "w1"):  # both in the group before traffic starts
            cluster.worker(name).start()
        for name in ("w0", "w1"):
            cluster.workers[name].wait_ready()

        # The producer runs on a side thread and the disruption on this one: worker
        # processes must be started by a thread that outlives them, because
        # PR_SET_PDEATHSIG (die_with_parent) fires when the *thread* that forked exits.
        sent_box: dict[str, dict[str, list[str]]] = {}

        def drive(bar: tqdm) -> None:
            sent_box["sent"] = asyncio.run(produce(cluster.settings, events, rate, users, bar))

        t0 = time.monotonic()
        with tqdm(total=events, desc=f"scenario {scenario}", unit="ev") as bar:
            producer = threading.Thread(target=drive, args=(bar,), name="chaos-producer")
            producer.start()
            time.sleep(events / rate / 3)
            disrupt(scenario, cluster, outage)()
            producer.join()
        sent = sent_box["sent"]
        ids = asyncio.run(collect(cluster.settings, events, idle=90))
        elapsed = time.monotonic() - t0
        expected = {f"ev{i}" for i in range(events)}
        distinct = set(ids)
        crashed = [n for n, w in cluster.workers.items() if w.proc is not None and not w.running]
        wrong = check_states(cluster, sent, cluster.settings.history_len)
        result = {
            "scenario": scenario,
            "events_sent": events,
            "lost": len(expected - distinct),
            "duplicates": len(ids) - len(distinct),
            "state_mismatches": len(wrong),
            "mismatch_examples": wrong[:3],
            "users": len(sent),
            "seconds": round(elapsed, 1),
        }
        if cluster.notes:
            result["notes"] = cluster.notes
        if crashed:
            result["crashed_workers"] = {
                n: cluster.workers[n].log_tail(40).splitlines() for n in crashed
            }
        return result
    finally:
        cluster.stop()
        if keep is not None:
            shutil.copytree(
                workdir,
                keep / scenario,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("broker", "w*[0-9]"),
            )
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="abcd")
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=500.0, help="events/s")
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--outage", type=float, default=30.0, help="broker down seconds (d)")
    ap.add_argument("--out", type=Path, default=ROOT / "results/chaos.json")
    ap.add_argument("--keep-logs", type=Path, help="copy worker logs here")
    args = ap.parse_args()
    base = local_broker_settings()
    results = []
    for sc in args.scenarios:
        r = run_scenario(sc, base, args.events, args.rate, args.users, args.outage, args.keep_logs)
        print(json.dumps(r), flush=True)
        results.append(r)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "events": args.events,
                "rate": args.rate,
                "users": args.users,
                "outage_s": args.outage,
                "results": results,
            },
            indent=2,
        )
    )
    print(f"-> {args.out}")
    bad = [r for r in results if r["lost"] or r["state_mismatches"]]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
