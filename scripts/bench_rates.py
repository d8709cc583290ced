"""Rising-rate end-to-end benchmark (``bench_pipeline.py rates``): see that module's docstring."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scripts.bench_pipeline import DATASET, ROOT, cpu_seconds, git_commit, isolated, stat_ticks
from stream_app.harness import Stack, broker_running, broker_settings, settings_env
from stream_app.kafka import clients
from stream_app.kafka.producer import Pacer, dataset_events, send_event
from stream_app.processes import child_pids
from stream_app.serializers import decode_value
from stream_app.settings import Settings

MARKOV_RATES = [250, 500, 750, 1000, 1250, 1500, 2000, 3000, 5000]
MODEL_RATES = [250, 500, 750, 1000, 1250, 1500, 2000]
PACE_MS = 10.0  # the producer sends a burst per 10 ms (docs/benchmarks.md)


class Receiver:
    """Reads the output topic throughout; records (step, latency ms) per recommendation."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.latencies: dict[int, list[float]] = {}
        self.received: dict[int, set[str]] = {}
        self.stop = False

    async def run(self) -> None:
        consumer = clients.consumer(self.settings, self.settings.output_topic)
        await consumer.start()
        try:
            while not self.stop:
                batch = await consumer.getmany(timeout_ms=100, max_records=5000)
                now_ms = time.time() * 1000
                for records in batch.values():
                    for r in records:
                        rec = decode_value(r.value)
                        step = int(rec["source_event_id"].split("-")[1])
                        self.latencies.setdefault(step, []).append(now_ms - rec["event_ts"])
                        self.received.setdefault(step, set()).add(rec["source_event_id"])
        finally:
            await consumer.stop()


async def send_step(
    producer: Any,
    settings: Settings,
    events: Any,
    step: int,
    rate: float,
    seconds: float,
    pace_ms: float = PACE_MS,
) -> int:
    pacer = Pacer(rate, grain=pace_ms / 1000)
    n = int(rate * seconds)
    pending = []
    for i in range(n):
        await pacer.tick()
        user, item, event_type, _, category = next(events)
        event_id = f"s-{step}-{i}"
        pending.append(
            await send_event(
                producer, settings.input_topic, user, item, event_type, event_id, category=category
            )
        )
    await asyncio.gather(*pending)
    return n


def scrape(settings: Settings) -> dict[str, float]:
    """The worker's batcher counters (sums and counts), from its /metrics page."""
    import urllib.request

    url = f"http://{settings.metrics_host}:{settings.metrics_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("streamrec_batcher_") and name.endswith(("_sum", "_count")):
            out[name] = float(value)
    return out


def batcher_means(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    def mean(metric: str) -> float:
        n = after.get(f"{metric}_count", 0) - before.get(f"{metric}_count", 0)
        total = after.get(f"{metric}_sum", 0) - before.get(f"{metric}_sum", 0)
        return total / n if n else float("nan")

    if after.get("streamrec_batcher_batch_size_count", 0) <= before.get(
        "streamrec_batcher_batch_size_count", 0
    ):
        return {}  # no batches: the Markov scorer runs inline
    return {
        "mean_batch_size": mean("streamrec_batcher_batch_size"),
        "mean_queue_wait_ms": 1000 * mean("streamrec_batcher_queue_wait_seconds"),
        "mean_inference_ms": 1000 * mean("streamrec_batcher_inference_seconds"),
    }


class CpuMeter:
    """CPU time over a step: the worker's process, its children (a served model's
    process), this benchmark's own (producer and consumer), the broker's processes
    when they run here, with their JIT compiler threads apart (a broker just started
    spends a share of the cores compiling), and the whole machine's busy time
    (``/proc/stat``)."""

    def __init__(self, worker_pid: int | None = None, broker_pids: Sequence[int] = ()) -> None:
        self.worker_pid = worker_pid
        self.broker_pids = list(broker_pids)

    def read(self) -> dict[str, float]:
        if self.worker_pid is None:
            return {}
        out = {
            "worker": cpu_seconds([self.worker_pid]),
            "model": cpu_seconds(child_pids(self.worker_pid)),
            "bench": time.process_time(),
            "machine": machine_busy_seconds(),
        }
        if self.broker_pids:
            out["broker"] = cpu_seconds(self.broker_pids)
            out["broker_jit"] = thread_cpu_seconds(self.broker_pids, JIT_THREADS)
        return out

    @staticmethod
    def per_event(
        before: dict[str, float], after: dict[str, float], events: int
    ) -> dict[str, float]:
        """µs of CPU per event sent, by part; ``other``: the machine's remainder (a
        few µs below zero when nothing else ran: the counters are read one by one)."""
        if not before or not events:
            return {}
        spent = {k: after[k] - before[k] for k in before}
        parts = ("worker", "model", "bench", "broker")
        spent["other"] = spent["machine"] - sum(spent.get(part, 0.0) for part in parts)
        return {f"{k}_cpu_us_per_event": v / events * 1e6 for k, v in spent.items()}


JIT_THREADS = ("C1 CompilerThre", "C2 CompilerThre")  # HotSpot's names, cut to 15 characters


def broker_pids() -> list[int]:
    """The Kafka brokers running on this machine (``kafka.Kafka`` JVMs)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"kafka.Kafka" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return found


def thread_cpu_seconds(pids: list[int], prefixes: tuple[str, ...]) -> float:
    """User plus system CPU time of the processes' threads named with one of ``prefixes``."""
    total = 0
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for ticks in map(stat_ticks, (task / "stat" for task in tasks)):
            if ticks is not None and ticks[0].startswith(prefixes):
                total += ticks[1]
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds every core spent not idle (nor waiting for I/O) since boot."""
    user, nice, system, _idle, _iowait, irq, softirq = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]
    )
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


WARM_STEP = 10_000  # the warm-up step's id in the event ids (never a measured step's)


async def run_rates(
    settings: Settings,
    rates: list[int],
    seconds: float,
    grace: float,
    bound_ms: float,
    warm_s: float = 0.0,
    meter: CpuMeter | None = None,
    pace_ms: float = PACE_MS,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The warm-up step at the first rate (``warm_s`` seconds, None when 0), then the
    measured steps, up to the first one not sustained (``meter``: CPU per event of
    each step, by process; ``pace_ms``: the producer's bursts, :class:`Pacer`)."""
    receiver = Receiver(settings)
    reading = asyncio.create_task(receiver.run())
    producer = clients.producer(settings)
    await producer.start()
    events = dataset_events(DATASET if DATASET.exists() else None)
    steps: list[dict[str, Any]] = []
    warm_up = None

    async def step(number: int, rate: int, length: float) -> dict[str, Any]:
        return await run_step(
            receiver,
            producer,
            settings,
            events,
            (number, rate, length, pace_ms),
            grace,
            meter or CpuMeter(),
        )

    try:
        # The worker joins its group and the model's first batches run. A loaded
        # machine starts slower: wait until the first events are all recommended.
        first = await send_step(producer, settings, events, 0, 100, 5)
        deadline = time.monotonic() + 60
        while len(receiver.received.get(0, ())) < first and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)
        if warm_s > 0 and rates:
            # A broker just started spends a share of the cores compiling (its JIT
            # threads took 0.2-0.5 of a core in its first half minute of traffic).
            warm_up = await step(WARM_STEP, rates[0], warm_s)
            report_step("warm-up", warm_up, bound_ms)
            await asyncio.sleep(2)
        for number, rate in enumerate(rates, start=1):
            before = await asyncio.to_thread(scrape, settings)
            row = await step(number, rate, seconds)
            if before:
                row.update(batcher_means(before, await asyncio.to_thread(scrape, settings)))
            steps.append(row)
            if not report_step(f"{rate:>6}/s", row, bound_ms):
                break
            await asyncio.sleep(2)
    finally:
        await producer.stop()
        receiver.stop = True
        await reading
    return warm_up, steps


async def run_step(
    receiver: Receiver,
    producer: Any,
    settings: Settings,
    events: Any,
    load: tuple[int, int, float, float],
    grace: float,
    meter: CpuMeter,
) -> dict[str, Any]:
    """Send one step (``load``: its number, rate, seconds and pace in ms), wait up to
    ``grace`` s for its recommendations; its row."""
    number, rate, seconds, pace_ms = load
    cpu_before = meter.read()
    started = time.monotonic()
    sent = await send_step(producer, settings, events, number, rate, seconds, pace_ms)
    send_s = time.monotonic() - started
    deadline = time.monotonic() + grace
    while len(receiver.received.get(number, ())) < sent and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    cpu = meter.per_event(cpu_before, meter.read(), sent)
    lat = np.array(receiver.latencies.get(number, [0.0]))
    return cpu | {
        "target_rate": rate,
        "sent": sent,
        "achieved_input_rate": sent / send_s,
        "recommended": len(receiver.received.get(number, ())),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
    }


def report_step(label: str, row: dict[str, Any], bound_ms: float) -> bool:
    """Mark ``row`` sustained or not, print it; whether it was sustained."""
    got, sent = row["recommended"], row["sent"]
    row["sustained"] = (
        got == sent
        and row["p99_ms"] <= bound_ms
        and row["achieved_input_rate"] >= 0.95 * row["target_rate"]
    )
    print(
        f"  {label}: in {row['achieved_input_rate']:.0f}/s, {got}/{sent} recommended, "
        f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms"
        + (f", batch {row['mean_batch_size']:.1f}" if "mean_batch_size" in row else "")
        + cpu_line(row)
        + ("" if row["sustained"] else "  (not sustained)"),
        flush=True,
    )
    return bool(row["sustained"])


def cpu_line(row: dict[str, Any]) -> str:
    """``row``'s CPU per event by part, as printed ("" when not measured)."""
    parts = []
    for part in ("worker", "model", "bench", "broker", "other"):
        key = f"{part}_cpu_us_per_event"
        if key not in row or (part == "model" and row[key] < 1):
            continue
        text = f"{part} {row[key]:.0f}"
        if part == "broker" and "broker_jit_cpu_us_per_event" in row:
            text += f" (JIT {row['broker_jit_cpu_us_per_event']:.0f})"
        parts.append(text)
    return f"; CPU µs/event: {', '.join(parts)}" if parts else ""


def run_scorer(
    name: str, extra_env: dict[str, str], base: Settings, rates: list[int], args: Any
) -> dict[str, Any]:
    print(f"{name}:", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **isolated(base, "bench-rates-" + re.sub(r"[^A-Za-z0-9._-]+", "-", name), Path(tmp)),
            **extra_env,
        }
        with Stack(env, Path(tmp), cwd=ROOT) as stack:
            stack.create_topics()
            worker = stack.worker("worker").start()
            # The worker's own settings: its /metrics port is scraped between steps.
            settings = Settings.from_env(worker.env)
            warm_up, steps = asyncio.run(
                run_rates(
                    settings,
                    rates,
                    args.seconds,
                    args.grace,
                    args.bound_ms,
                    args.warm_s,
                    CpuMeter(worker.pid, broker_pids()),
                    args.pace_ms,
                )
            )
    ok = [s for s in steps if s["sustained"]]
    best = max(ok, key=lambda s: s["target_rate"]) if ok else None
    return {
        "scorer": name,
        "env": extra_env,
        "warm_up": warm_up,
        "steps": steps,
        "highest_sustained_rate": best["target_rate"] if best else 0,
        "at_highest": best,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_pipeline.py rates")
    ap.add_argument("--model-dir", default=str(ROOT / "runs/beauty-transformer"))
    ap.add_argument("--scorers", default="markov,transformer")
    ap.add_argument("--seconds", type=float, default=15.0, help="per rate step")
    ap.add_argument("--grace", type=float, default=5.0, help="seconds to catch up after a step")
    ap.add_argument(
        "--warm-s",
        type=float,
        default=10.0,
        help="seconds at the first rate before the measured steps, not measured (0: none)",
    )
    ap.add_argument("--bound-ms", type=float, default=1000.0, help="p99 bound of a sustained step")
    ap.add_argument(
        "--pace-ms",
        type=float,
        default=PACE_MS,
        help="the producer sends each step in bursts of this many ms of events",
    )
    ap.add_argument("--markov-rates", default=",".join(map(str, MARKOV_RATES)))
    ap.add_argument("--model-rates", default=",".join(map(str, MODEL_RATES)))
    ap.add_argument("--adjust", default="on,off", help="the adjuster: on, off or both")
    ap.add_argument(
        "--rounds", type=int, default=1, help="every scorer and adjuster setting, N times in turns"
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a worker setting for every run (e.g. stream_batch_max=1); repeatable",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "results/bench_rates.json")
    args = ap.parse_args(argv)
    base = broker_settings(19192)
    wanted = args.scorers.split(",")
    if "transformer" in wanted and not (Path(args.model_dir) / "model.pt").exists():
        raise SystemExit(f"no checkpoint in {args.model_dir}: run `streamrec train` first")
    runs = []
    model = settings_env(model_dir=Path(args.model_dir).resolve())
    scorers = {
        "markov": ({}, [int(r) for r in args.markov_rates.split(",")]),
        "transformer": (model, [int(r) for r in args.model_rates.split(",")]),
    }
    with broker_running(base):
        for round_ in range(1, args.rounds + 1):
            for scorer in (s for s in scorers if s in wanted):
                env, rates = scorers[scorer]
                for adjust in args.adjust.split(","):
                    name = f"{scorer}, adjuster {adjust}"
                    flag = settings_env(
                        adjust=adjust == "on", **dict(f.split("=", 1) for f in args.set)
                    )
                    run = run_scorer(name, {**env, **flag}, base, rates, args)
                    runs.append({**run, "round": round_})
    report = {
        "benchmark": "rising steady input rates, one worker, broker on the same machine",
        "latency": "event ts (producer wall clock) -> consumer receives the recommendation",
        "sustained": f"all recommended within {args.grace}s of the step end, p99 <= "
        f"{args.bound_ms} ms, input rate reached",
        "commit": git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "seconds_per_step": args.seconds,
        "warm_up_seconds": args.warm_s,
        "producer_burst_ms": args.pace_ms,
        "settings": args.set,
        "dataset": str(DATASET),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_end": list(os.getloadavg()),
        },
        "rounds": args.rounds,
        "runs": runs,
        "summary": summarise(runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_report(report)
    print(f"-> {args.out}")
    return 0


def print_report(report: dict[str, Any]) -> None:
    for r in report["runs"]:
        best = r["at_highest"]
        tail = f", p50 {best['p50_ms']:.1f} ms, p99 {best['p99_ms']:.1f} ms" if best else ""
        print(f"{r['scorer']}: highest sustained {r['highest_sustained_rate']} events/s{tail}")
    if report["rounds"] > 1:
        for name, by_rate in report["summary"].items():
            for rate, m in by_rate.items():
                print(
                    f"{name}, {rate}/s over {m['rounds']} rounds: sustained in "
                    f"{m['sustained']}, median p50 {m['median_p50_ms']:.1f} ms, "
                    f"median p99 {m['median_p99_ms']:.1f} ms"
                )


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    """Per scorer and target rate, over the rounds that reached it: how many sustained
    it, and the medians of p50 and p99 (one round's p99 swings by 2x on a shared VM)."""
    rows: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for run in runs:
        for step in run["steps"]:
            rows.setdefault(run["scorer"], {}).setdefault(step["target_rate"], []).append(step)
    return {
        name: {
            rate: {
                "rounds": len(steps),
                "sustained": sum(bool(s["sustained"]) for s in steps),
                "median_p50_ms": float(np.median([s["p50_ms"] for s in steps])),
                "median_p99_ms": float(np.median([s["p99_ms"] for s in steps])),
            }
            for rate, steps in by_rate.items()
        }
        for name, by_rate in rows.items()
    }
