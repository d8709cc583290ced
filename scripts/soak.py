"""Soak test: a steady load, warm-up and then M minutes, sampling the worker's memory.

Runs the embedded broker (unless STREAMREC_KAFKA_BOOTSTRAP is set), one worker
with the Markov scorer, and a producer replaying the Beauty sequences in a loop
at a steady rate (the same users come back, as real users do). Every 10 s it
samples the worker's RSS and its table sizes (``GET /tables/``). Writes
``results/soak.json`` and ``results/soak.png``; the headline figure is RSS
growth from the end of warm-up (one full pass over the file: every user and item
seen), and then until the table sizes stop changing (the worker has caught up), to
the end, ``--minutes`` later.

    .venv/bin/python scripts/soak.py --minutes 30 --rate 300
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

from models.datasets import interleave, read_sequences, synthetic_sequences
from stream_app.harness import Stack, broker_settings, isolated_env
from stream_app.kafka import clients
from stream_app.kafka.producer import Pacer, send_event
from stream_app.processes import WorkerProcess
from stream_app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared/datasets/amazon-beauty/sequences.txt"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def tables(web_port: str) -> dict[str, Any]:
    """The worker's table sizes and RocksDB memory (``GET /tables/``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/tables/", timeout=30) as r:
        return json.loads(r.read())


def replayed() -> list[tuple[str, str]]:
    users = list(read_sequences(DATASET)) if DATASET.exists() else list(synthetic_sequences())
    return list(interleave(users, seed=0))


async def load(
    settings: Settings, events: list[tuple[str, str]], rate: float, done: asyncio.Event, bar: tqdm
) -> int:
    producer = clients.producer(settings)  # security from the settings, like every client
    await producer.start()
    stream = itertools.cycle(events)
    sent, pacer = 0, Pacer(rate)
    try:
        while not done.is_set():
            await pacer.tick()
            user, item = next(stream)
            await send_event(producer, settings.input_topic, user, item, "purchase", f"soak-{sent}")
            sent += 1
            bar.update(1)
    finally:
        await producer.stop()
    return sent


async def sample(
    worker: WorkerProcess,
    every: float,
    warm_s: float,
    measure_s: float,
    limit_s: float,
    done: asyncio.Event,
    out: list[dict[str, Any]],
) -> float | None:
    """Sample every ``every`` s. Warm-up ends once ``warm_s`` have passed *and* the
    table sizes stop changing (the worker has caught up with every user and item);
    then ``measure_s`` more are sampled. Returns when warm-up ended (None: never,
    within ``limit_s``)."""
    start = time.monotonic()
    warm_end: float | None = None
    while True:
        assert worker.proc is not None
        t = time.monotonic() - start
        row: dict[str, Any] = {"t": round(t, 1), "rss_bytes": rss_bytes(worker.proc.pid)}
        with contextlib.suppress(OSError, ValueError):
            answer = await asyncio.to_thread(tables, worker.env["STREAMREC_WEB_PORT"])
            row["tables"] = answer["tables"]
            # The shared cache, which also pays for the memtables (charged to it).
            row["rocksdb_bytes"] = answer.get("rocksdb_bytes", {}).get("block_cache", 0)
        previous = out[-1].get("tables") if out else None
        out.append(row)
        if warm_end is None and t >= warm_s and "tables" in row and row["tables"] == previous:
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
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(t, [s["rss_bytes"] / 2**20 for s in samples], label="RSS")
    if any("rocksdb_bytes" in s for s in samples):
        ax[0].plot(
            t,
            [(s["rss_bytes"] - s.get("rocksdb_bytes", 0)) / 2**20 for s in samples],
            label="RSS - RocksDB caches and memtables",
        )
    ax[0].axvline(warmup_s / 60, color="grey", linestyle="--", label="end of warm-up")
    ax[0].set(xlabel="minutes", ylabel="worker RSS (MiB)", title="memory")
    ax[0].legend()
    for name in ("users", "items", "feedback"):
        ax[1].plot(t, [s.get("tables", {}).get(name, float("nan")) for s in samples], label=name)
    ax[1].set(xlabel="minutes", ylabel="keys", title="table sizes")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30, help="measured minutes after warm-up")
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--every", type=float, default=10, help="seconds between samples")
    ap.add_argument(
        "--max-warmup-passes",
        type=float,
        default=3,
        help="give up waiting for the tables to stop changing after this many passes",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "results/soak.json")
    return ap.parse_args()


def soak(
    args: argparse.Namespace, events: list[tuple[str, str]], warm_min: float, measure: float
) -> dict[str, Any]:
    """Broker, one worker and the load; what :func:`main` reports of the run."""
    base = broker_settings(19292)
    limit = args.max_warmup_passes * warm_min + measure
    samples: list[dict[str, Any]] = []
    env = isolated_env(
        "soak",
        web_port=os.environ.get("STREAMREC_WEB_PORT", "16999"),
        metrics_port=os.environ.get("STREAMREC_METRICS_PORT", "16998"),
        log_level="warn",
    )
    with tempfile.TemporaryDirectory() as tmp, Stack(env, Path(tmp), cwd=ROOT) as stack:
        stack.use_broker(base)
        stack.create_topics()
        settings = stack.settings
        worker = stack.worker("worker", ports=False).start()
        try:
            time.sleep(5)
            if not worker.running:
                raise SystemExit(f"the worker did not start:\n{worker.log_tail(40)}")

            async def run() -> tuple[int, float | None]:
                done = asyncio.Event()
                sampler = asyncio.create_task(
                    sample(worker, args.every, warm_min, measure, limit, done, samples)
                )
                expected = int((warm_min + measure) * args.rate)
                with tqdm(total=expected, desc="soak", unit="ev") as bar:
                    sent = await load(settings, events, args.rate, done, bar)
                return sent, await sampler

            sent, warm_end = asyncio.run(run())
        finally:
            alive = worker.running
            if not alive:
                print(f"the worker died:\n{worker.log_tail(40)}")
    rocksdb = {k: v for k, v in worker.env.items() if k.startswith("STREAMREC_ROCKSDB")}
    return {
        "sent": sent,
        "warm_end": warm_end,
        "alive": alive,
        "rocksdb": rocksdb,
        "samples": samples,
    }


def main() -> int:
    args = parse_args()
    events = replayed()
    warm_min = len(events) / args.rate  # one full pass: every user and item sent once
    run = soak(args, events, warm_min, args.minutes * 60)
    samples, warm_end = run["samples"], run["warm_end"]
    warm = warm_end if warm_end is not None else float("inf")
    after = [s for s in samples if s["t"] >= warm]
    growth = (after[-1]["rss_bytes"] / after[0]["rss_bytes"] - 1) if len(after) > 1 else None

    def outside_rocksdb(s: dict[str, Any]) -> int:
        return s["rss_bytes"] - s.get("rocksdb_bytes", 0)

    growth_outside = (
        outside_rocksdb(after[-1]) / outside_rocksdb(after[0]) - 1 if len(after) > 1 else None
    )
    report = {
        "minutes": args.minutes,
        "rate": args.rate,
        "events_sent": run["sent"],
        "events_per_pass": len(events),
        "worker_alive_at_end": run["alive"],
        "warmup": "one full pass, then until the table sizes stop changing",
        "warmup_s": warm_end,
        "measured_s": (after[-1]["t"] - after[0]["t"]) if len(after) > 1 else 0,
        "tables_final_from_s": tables_final_from(samples),
        "rss_growth_after_warmup": growth,
        # RocksDB's caches and memtables fill up to their configured bounds slowly
        # (compactions write new blocks); the rest of the worker is what could leak.
        "rss_outside_rocksdb_growth_after_warmup": growth_outside,
        "settings": run["rocksdb"],
        "samples": samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    plot(samples, warm_end or 0.0, args.out.with_suffix(".png"))
    print(f"RSS growth after warm-up: {growth:.1%}" if growth is not None else "too few samples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
