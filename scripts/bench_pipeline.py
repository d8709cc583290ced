"""End-to-end benchmarks of one streamrec worker, with the broker on the same machine.

``compare`` (default): throughput vs a bare Faust agent, in one run. For each
contender: pre-produce N events (the Beauty replay) to fresh topics, start one
worker process, and time the output topic from the first output message to the
N-th. Results go to ``results/bench_pipeline.json``.

    .venv/bin/python scripts/bench_pipeline.py --events 40000

``--workers 1,2``: scale-out instead: the streamrec worker alone, run with 1
then 2 worker processes in one consumer group (same app id, the input's
partitions shared), each count on fresh topics. Results go to
``results/bench_workers.json``.

    .venv/bin/python scripts/bench_pipeline.py --workers 1,2 --events 20000

``rates``: one worker per scorer (the online Markov scorer, and the Transformer
checkpoint served through the micro-batcher), fed at rising steady rates. A
step is *sustained* when every event of the step got its recommendation within
``--grace`` seconds of the step's end and p99 latency stayed under ``--bound-ms``.
Latency is from the event's ``ts`` (the producer's wall clock at sending) to the
consumer receiving its recommendation. Results go to ``results/bench_rates.json``.

    .venv/bin/python scripts/bench_pipeline.py rates --model-dir runs/beauty-transformer

Uses the embedded broker unless STREAMREC_KAFKA_BOOTSTRAP is set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stream_app.harness import Stack, broker_running, broker_settings, isolated_env
from stream_app.kafka import clients
from stream_app.kafka.producer import produce
from stream_app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared/datasets/amazon-beauty/sequences.txt"


def isolated(base: Settings, prefix: str, data_dir: Path) -> dict[str, str]:
    """A benchmark run's variables: fresh topics on ``base``'s cluster, quiet logs."""
    return isolated_env(prefix, kafka_bootstrap=base.bootstrap, data_dir=data_dir, log_level="warn")


async def time_outputs(settings: Settings, n: int, timeout: float) -> dict[str, float]:
    consumer = clients.consumer(settings, settings.output_topic)
    await consumer.start()
    seen, first, last = 0, 0.0, 0.0
    start = time.monotonic()
    try:
        while seen < n and time.monotonic() - start < timeout:
            batch = await consumer.getmany(timeout_ms=200, max_records=10000)
            now = time.monotonic()
            for records in batch.values():
                if records and not first:
                    first = now
                seen += len(records)
                last = now if records else last
    finally:
        await consumer.stop()
    span = max(last - first, 1e-9)
    return {
        "outputs": seen,
        "first_output_s": first - start,
        "span_s": span,
        "events_per_s": (seen - 1) / span if seen > 1 else 0.0,
    }


def run_one(
    name: str, cmd: list[str], base: Settings, n: int, timeout: float, workers: int = 1
) -> dict[str, Any]:
    """Pre-produce ``n`` events, start ``workers`` processes in one group, time the output."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(isolated(base, f"bench-{name}", Path(tmp)), Path(tmp), cwd=ROOT, argv=cmd)
        settings = stack.settings
        stack.create_topics()
        asyncio.run(produce(settings, DATASET if DATASET.exists() else None, 0, n))
        procs = stack.start_workers(workers, wait=False)
        try:
            result = asyncio.run(time_outputs(settings, n, timeout))
        finally:
            stack.stop()
        if result["outputs"] < n:  # say why, before the logs go with the temp dir
            for w in procs:
                print(f"{name}: {result['outputs']} of {n} outputs; {w.log_path.name}:")
                print(w.log_tail(20))
    result["name"] = name
    result["workers"] = workers
    print(
        f"{name:>10}: {result['outputs']} outputs, {result['events_per_s']:.0f} events/s",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "rates":
        sys.path.insert(0, str(ROOT))  # run as a file: make ``scripts`` importable
        from scripts.bench_rates import main as rates_main

        return rates_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--out", type=Path, help="default: results/bench_pipeline.json")
    ap.add_argument(
        "--workers",
        help="comma-separated worker counts (e.g. 1,2): scale-out mode, streamrec only",
    )
    args = ap.parse_args(argv)
    base = broker_settings(19192)
    if args.workers:
        counts = [int(c) for c in args.workers.split(",")]
        return scale_out(base, counts, args.events, args.timeout, args.out)
    args.out = args.out or ROOT / "results/bench_pipeline.json"
    with broker_running(base):
        py = sys.executable
        runs = [
            run_one(
                "baseline",
                [py, str(ROOT / "scripts/baseline_agent.py")],
                base,
                args.events,
                args.timeout,
            ),
            run_one(
                "streamrec", [py, "-m", "stream_app", "worker"], base, args.events, args.timeout
            ),
        ]
    report = {
        "benchmark": "end-to-end events/s, one worker, Markov scorer, input pre-produced",
        "events": args.events,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": runs,
        "ratio_streamrec_vs_baseline": runs[1]["events_per_s"] / max(runs[0]["events_per_s"], 1e-9),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"ratio streamrec/baseline: {report['ratio_streamrec_vs_baseline']:.2f} -> {args.out}")
    return 0


def scale_out(base: Settings, counts: list[int], n: int, timeout: float, out: Path | None) -> int:
    """The streamrec worker with each worker count, on the same broker and box."""
    out = out or ROOT / "results/bench_workers.json"
    with broker_running(base):
        cmd = [sys.executable, "-m", "stream_app", "worker"]
        runs = [run_one(f"workers{c}", cmd, base, n, timeout, workers=c) for c in counts]
    report = {
        "benchmark": "end-to-end events/s by worker count, one consumer group, Markov scorer, "
        "input pre-produced, broker and workers on the same machine",
        "events": n,
        "partitions": base.partitions,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_at_end": os.getloadavg(),
        "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
