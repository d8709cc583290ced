"""End-to-end benchmarks of one streamrec worker, with the broker on the same machine.

``compare`` (default): throughput of streamrec's worker in several variants, each
against a bare Faust agent (one table update and one send per event) measured in
the same round: the bare agent first, then each variant, ``--rounds`` times. Each
run pre-produces N events (the Beauty replay) to fresh topics, starts the worker(s)
and times the output topic from the first output to the N-th. ``--variants``:

- ``default``: Markov scorer, adjuster on, msgpack input;
- ``adjust-off``: the same with ``STREAMREC_ADJUST=false``;
- ``json``: the input encoded as JSON (``produce --format json``);
- ``workers2``: two workers in one consumer group, the partitions shared;
- ``reroute``: the input placed as librdkafka's default partitioner
  (``consistent_random``: CRC32 of the key) places it, so the worker forwards
  each event whose partition is not its user's (about 3 of 4);
- ``one-at-a-time``: ``STREAMREC_STREAM_BATCH_MAX=1`` (no batch loop).

``--against COMMIT`` runs each variant on that commit's code too (a temporary git
worktree, its hot path compiled as ``setup.py`` builds it), before this tree's,
in the same round. Before the first round the bare agent runs once on
``--warm-up`` events, not counted: a broker just started spends a share of the
cores compiling, which can slow the first run of a round. ``--profile DIR``
records each run's (first) worker with py-spy and adds its time by stage
(``scripts/worker_flame.py``) to the report;
those workers run the sources (``STREAMREC_PURE_PYTHON=1``): py-spy sees no
frame inside a compiled module. Each run records its ``hot_path``.

Every run, each variant's ratio to the bare agent of its round, the machine and
the commit go to ``results/bench_pipeline.json``.

    .venv/bin/python scripts/bench_pipeline.py --events 40000 --rounds 2

``--workers 1,2``: scale-out instead: the streamrec worker alone, run with 1
then 2 worker processes in one consumer group (same app id, the input's
partitions shared), each count on fresh topics. Results go to
``results/bench_workers.json``.

    .venv/bin/python scripts/bench_pipeline.py --workers 1,2 --events 20000

``rates``: one worker per scorer (Markov, and the Transformer checkpoint served
through the micro-batcher), fed at rising steady rates. A
step is *sustained* when every event of the step got its recommendation within
``--grace`` seconds of the step's end and p99 latency stayed under ``--bound-ms``.
Latency is from the event's ``ts`` (the producer's wall clock at sending) to the
consumer receiving its recommendation. The producer sends each step in bursts of
``--pace-ms`` (default 10) milliseconds of events: a sender that slept between
every 2-3 events took 0.08 of a core more at 1,000 events/s, on the cores it
measures. First, ``--warm-s`` seconds at the first rate, not measured.
``--rounds N`` runs every scorer and adjuster setting N times in turns and adds,
per rate, the median p50 and p99 and how many rounds sustained it.
Results go to ``results/bench_rates.json``.

    .venv/bin/python scripts/bench_pipeline.py rates --model-dir runs/beauty-transformer

Uses the embedded broker unless STREAMREC_KAFKA_BOOTSTRAP is set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.compiled import PURE_ENV
from stream_app.harness import Stack, broker_running, broker_settings, isolated_env, settings_env
from stream_app.kafka import clients
from stream_app.kafka.producer import dataset_events, produce
from stream_app.routing import partition_for
from stream_app.serializers import Format
from stream_app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared/datasets/amazon-beauty/sequences.txt"


@dataclass(frozen=True)
class Variant:
    """One contender: the bare agent or streamrec's worker, its settings and its input."""

    name: str
    about: str = ""
    fields: dict[str, object] = field(default_factory=dict)  # worker settings
    fmt: Format = "msgpack"  # the input's value encoding
    workers: int = 1
    crc32: bool = False  # input placed by librdkafka's default partitioner
    bare: bool = False  # the bare Faust agent instead of streamrec
    code: Path | None = None  # the worker's code from this tree (another commit's)

    def at(self, commit: str, tree: Path) -> Variant:
        """This variant run on the code of ``tree`` (a checkout of ``commit``)."""
        about = f"{self.about}, the code of {commit}"
        return Variant(
            f"{self.name}@{commit}",
            about,
            self.fields,
            self.fmt,
            self.workers,
            self.crc32,
            self.bare,
            tree,
        )

    def command(self) -> list[str]:
        if self.bare:
            return [sys.executable, str(ROOT / "scripts/baseline_agent.py")]
        return [sys.executable, "-m", "stream_app", "worker"]


BARE = Variant("baseline", "bare Faust agent: one table update and one send per event", bare=True)
VARIANTS = {
    v.name: v
    for v in (
        Variant("default", "streamrec, Markov, adjuster on, msgpack input"),
        Variant("adjust-off", "streamrec, Markov, STREAMREC_ADJUST=false", {"adjust": False}),
        Variant("json", "streamrec, Markov, adjuster on, JSON input", fmt="json"),
        Variant("workers2", "streamrec, default, two workers in one consumer group", workers=2),
        Variant("reroute", "streamrec, default, input on CRC32 partitions", crc32=True),
        Variant(
            "one-at-a-time",
            "streamrec, default, STREAMREC_STREAM_BATCH_MAX=1",
            {"stream_batch_max": 1},
        ),
    )
}


def isolated(base: Settings, prefix: str, data_dir: Path) -> dict[str, str]:
    """A benchmark run's variables: fresh topics on ``base``'s cluster, quiet logs."""
    return isolated_env(prefix, kafka_bootstrap=base.bootstrap, data_dir=data_dir, log_level="warn")


def crc32_partition(key: bytes, partitions: int) -> int:
    """librdkafka's ``consistent_random`` for a non-empty key: CRC32 of the key
    modulo the partition count (kcat's and confluent-kafka's default)."""
    return zlib.crc32(key) % partitions


def misplaced_by_crc32(n: int, partitions: int) -> int:
    """How many of the first ``n`` events CRC32 puts off their user's partition."""
    events = dataset_events(DATASET if DATASET.exists() else None)
    keys = (user.encode() for user, *_ in itertools.islice(events, n))
    return sum(crc32_partition(k, partitions) != partition_for(k, partitions) for k in keys)


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time the processes used so far (their threads included)."""
    ticks = (stat_ticks(Path(f"/proc/{pid}/stat")) for pid in pids)
    return sum(t[1] for t in ticks if t is not None) / os.sysconf("SC_CLK_TCK")


def stat_ticks(path: Path) -> tuple[str, int] | None:
    """A process's or thread's ``stat`` file: its name and the user plus system CPU
    clock ticks it used (None: it is gone)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    name, _, rest = text.partition("(")[2].rpartition(")")
    fields = rest.split()
    return name, int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


async def time_outputs(
    settings: Settings, n: int, timeout: float, pids: list[int] | None = None
) -> dict[str, float]:
    """Read the output topic until ``n`` outputs; the rate from the first to the last,
    and the CPU time ``pids`` used per output meanwhile."""
    consumer = clients.consumer(settings, settings.output_topic)
    await consumer.start()
    seen, first, last = 0, 0.0, 0.0
    cpu_first = cpu_last = 0.0
    start = time.monotonic()
    try:
        while seen < n and time.monotonic() - start < timeout:
            batch = await consumer.getmany(timeout_ms=200, max_records=10000)
            now = time.monotonic()
            for records in batch.values():
                if records and not first:
                    first, cpu_first = now, cpu_seconds(pids or [])
                seen += len(records)
                last = now if records else last
        cpu_last = cpu_seconds(pids or [])
    finally:
        await consumer.stop()
    span = max(last - first, 1e-9)
    out = {
        "outputs": seen,
        "first_output_s": first - start,
        "span_s": span,
        "events_per_s": (seen - 1) / span if seen > 1 else 0.0,
    }
    if pids and seen > 1:
        out["worker_cpu_us_per_event"] = (cpu_last - cpu_first) / (seen - 1) * 1e6
    return out


def run_one(
    v: Variant, base: Settings, n: int, timeout: float, profile: Path | None = None
) -> dict[str, Any]:
    """Pre-produce ``n`` events, start ``v.workers`` processes in one group, time the output
    (``profile``: a folder for py-spy's stacks of the first worker, and their stages)."""
    with tempfile.TemporaryDirectory() as tmp:
        prefix = "bench-" + v.name.replace("@", "-at-")  # no @ in topic names
        env = {**isolated(base, prefix, Path(tmp)), **settings_env(**v.fields)}
        if v.code is not None:
            env["PYTHONPATH"] = str(v.code)
        if profile:
            env[PURE_ENV] = "1"
        stack = Stack(env, Path(tmp), cwd=v.code or ROOT, argv=v.command())
        settings = stack.settings
        stack.create_topics()
        data = DATASET if DATASET.exists() else None
        placed = crc32_partition if v.crc32 else None
        asyncio.run(produce(settings, data, 0, n, v.fmt, partitioner=placed))
        misplaced = misplaced_by_crc32(n, settings.partitions) if v.crc32 else None
        procs = stack.start_workers(v.workers, wait=False)
        stacks = profile / f"{v.name}-{int(time.time())}.txt" if profile else None
        spy = flame().attach(procs[0].pid, stacks) if stacks else None
        try:
            pids = [w.pid for w in procs]
            result: dict[str, Any] = dict(asyncio.run(time_outputs(settings, n, timeout, pids)))
        finally:
            stack.stop()
        if spy is not None and stacks is not None:
            spy.wait(60)
            cpu = result.get("worker_cpu_us_per_event", 0.0)
            result.update(py_spy_stacks=str(stacks), stages=flame().shares(stacks))
            result["stage_cpu_us_per_event"] = flame().stage_cpu(stacks, cpu)
        if result["outputs"] < n:  # say why, before the logs go with the temp dir
            for w in procs:
                print(f"{v.name}: {result['outputs']} of {n} outputs; {w.log_path.name}:")
                print(w.log_tail(20))
    result.update(name=v.name, about=v.about, events=n, workers=v.workers, input_format=v.fmt)
    if not v.bare:
        result["hot_path"] = hot_path(env, v.code or ROOT)
    if misplaced is not None:
        result["events_off_their_users_partition"] = misplaced
    print(f"{v.name:>13}: {result['outputs']} outputs, {result['events_per_s']:.0f} events/s")
    sys.stdout.flush()
    return result


@contextlib.contextmanager
def checkout(commit: str | None) -> Iterator[Path | None]:
    """A temporary git worktree of ``commit`` (nothing when None)."""
    if commit is None:
        yield None
        return
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "against"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", str(tree), commit], check=True)
        try:
            if (tree / "setup.py").exists():  # compiled as this tree is
                build = [sys.executable, "setup.py", "-q", "build_ext", "--inplace", "-j", "2"]
                subprocess.run(build, cwd=tree, check=True)
            yield tree
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], check=False)


def hot_path(env: dict[str, str], cwd: Path) -> str:
    """``compiled`` or ``source``: how a worker started with ``env`` runs the Processor."""
    # (by its file: a tree from before models.compiled has no compiled build)
    probe = "import stream_app.processor as p\n"
    probe += "print('compiled' if p.__file__.endswith('.so') else 'source')"
    out = subprocess.run(
        [sys.executable, "-c", probe], env={**os.environ, **env}, cwd=cwd, capture_output=True
    )
    return out.stdout.decode().strip() or "unknown"


def flame() -> types.ModuleType:
    """:mod:`scripts.worker_flame` (this file may run as a script, outside the package)."""
    sys.path.insert(0, str(ROOT))
    return importlib.import_module("scripts.worker_flame")


def git_commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()),
    }


def compare(
    base: Settings,
    variants: list[Variant],
    rounds: int,
    n: int,
    timeout: float,
    profile: Path | None = None,
    warm_up: int = 0,
) -> dict[str, Any]:
    """``rounds`` rounds of the bare agent then each variant; every run, and each
    variant's ratio to the bare agent of its round. First, unless ``warm_up`` is 0,
    the bare agent on that many events, not counted."""
    report: dict[str, Any] = {
        "benchmark": "end-to-end events/s against a bare Faust agent of the same round, "
        "input pre-produced, broker and workers on the same machine",
        "events": n,
        "partitions": base.partitions,
        "rounds": rounds,
        "variants": {v.name: v.about for v in variants},
        "commit": git_commit(),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "runs": [],
    }
    with broker_running(base):
        if warm_up:
            # A broker just started spends a share of the cores compiling: its JIT
            # threads took 0.4-0.5 of a core during the first run, 0.1-0.25 after.
            report["warm_up"] = run_one(BARE, base, warm_up, timeout)
        for r in range(1, rounds + 1):
            bare = run_one(BARE, base, n, timeout, profile)
            report["runs"].append({**bare, "round": r})
            for v in variants:
                run = run_one(v, base, n, timeout, profile)
                ratio = run["events_per_s"] / max(bare["events_per_s"], 1e-9)
                report["runs"].append({**run, "round": r, "ratio_to_baseline": ratio})
    report["load_average_at_end"] = list(os.getloadavg())
    report["summary"] = summary(report["runs"], [v.name for v in variants])
    return report


def summary(runs: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Per contender: its rates and ratios by round, and their medians."""
    out: dict[str, Any] = {}
    for name in [BARE.name, *names]:
        mine = [r for r in runs if r["name"] == name]
        rates = [r["events_per_s"] for r in mine]
        entry: dict[str, Any] = {"events_per_s": rates, "median_events_per_s": median(rates)}
        entry["worker_cpu_us_per_event"] = [r.get("worker_cpu_us_per_event", 0.0) for r in mine]
        if name != BARE.name:
            ratios = [r["ratio_to_baseline"] for r in mine]
            entry.update(ratio_to_baseline=ratios, median_ratio=median(ratios))
        entry["all_outputs"] = all(r["outputs"] >= r.get("events", 0) for r in mine)
        out[name] = entry
    return out


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


def print_summary(report: dict[str, Any]) -> None:
    print(f"commit {report['commit']}, {report['events']} events, {report['rounds']} round(s)")
    for name, s in report["summary"].items():
        rates = ", ".join(f"{x:.0f}" for x in s["events_per_s"])
        ratio = ", ".join(f"{x:.2f}x" for x in s.get("ratio_to_baseline", []))
        line = f"{name:>13}: {rates} events/s" + (f"  ({ratio} of the bare agent)" if ratio else "")
        cpu = ", ".join(f"{x:.0f}" for x in s.get("worker_cpu_us_per_event", []))
        print(line + (f"; worker CPU {cpu} µs/event" if cpu else ""))


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
    ap.add_argument("--rounds", type=int, default=1, help="bare agent then variants, N times")
    ap.add_argument(
        "--warm-up",
        type=int,
        default=20_000,
        metavar="EVENTS",
        help="first run the bare agent on this many events, not counted (0: none)",
    )
    ap.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated subset of {','.join(VARIANTS)} (default: all)",
    )
    ap.add_argument(
        "--workers",
        help="comma-separated worker counts (e.g. 1,2): scale-out mode, streamrec only",
    )
    ap.add_argument("--against", help="git commit: run each variant on its code too, in turns")
    ap.add_argument(
        "--profile",
        type=Path,
        help="folder: record each run's worker with py-spy (scripts/worker_flame.py)",
    )
    args = ap.parse_args(argv)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    base = broker_settings(19192)
    if args.workers:
        counts = [int(c) for c in args.workers.split(",")]
        return scale_out(base, counts, args.events, args.timeout, args.out)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    if unknown := [v for v in names if v not in VARIANTS]:
        ap.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    with checkout(args.against) as tree:
        variants = [VARIANTS[name] for name in names]
        if tree is not None:  # each variant on the other commit's code, then on this tree's
            variants = [x for v in variants for x in (v.at(args.against, tree), v)]
        report = compare(
            base, variants, args.rounds, args.events, args.timeout, args.profile, args.warm_up
        )
    out = args.out or ROOT / "results/bench_pipeline.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print_summary(report)
    print(f"-> {out}")
    return 0


def scale_out(base: Settings, counts: list[int], n: int, timeout: float, out: Path | None) -> int:
    """The streamrec worker with each worker count, on the same broker and box."""
    out = out or ROOT / "results/bench_workers.json"
    with broker_running(base):
        runs = [run_one(Variant(f"workers{c}", workers=c), base, n, timeout) for c in counts]
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
