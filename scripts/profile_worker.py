"""Where the worker's time goes per event, in-process, without Faust and Kafka.

Runs the worker's per-event path as :mod:`stream_app.batch_loop` does:
:meth:`Processor.ingest` then :meth:`Processor.recommend` of the one request,
over the pipeline of :func:`~stream_app.components.build_components` with dict
state (as ``replay-eval`` builds it) or, with ``--tables rocksdb``, the worker's
tables (Faust RocksDB tables written once per batch of ``--batch`` events, no
broker: the changelog records are built, not sent), on the events ``scripts/bench_pipeline.py``
produces (the Beauty replay, msgpack, keyed by user, wall-clock-like timestamps
one millisecond apart). Passes over fresh pipelines, timed in CPU time
(the machine is shared), the best of ``--repeat`` kept:

- *clean*: nothing wrapped, the total per event;
- *staged*: each stage wrapped in a timer (some overhead: the clock is read twice a stage):
  decode (``events.parse``), state (the rest of ``ingest``: history, validation),
  Markov learn, adjust learn (``OnlineAdjustment.observe``), score (Markov),
  adjust re-rank (``OnlineAdjustment.rerank``), render (building the message),
  encode (the Processor's encoder, or ``encode_value`` in older trees), and
  with ``--tables rocksdb`` write (each batch's end: the writes held decoded
  encoded, the changelog records built, RocksDB written).

The clock the messages carry (``emitted_ts``) is pinned, so that every output
message is reproducible: ``--digest`` prints the SHA-256 of all of them and of
the users' and the feedback tables at the end, and
``--against DIR`` runs this script on the code in ``DIR`` (e.g. ``/work/main``)
in a subprocess and checks both digests agree.

    PYTHONPATH=. .venv/bin/python scripts/profile_worker.py --events 20000 \
        --against ../main --cprofile results/profile_worker.prof
    # -> results/profile_worker.json
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import hashlib
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared/datasets/amazon-beauty/sequences.txt"
T0 = 1_780_000_000_000  # the first event's ts (ms); the pinned clock is a day later
STAGES = ("decode", "state", "markov_learn", "adjust_learn", "score", "adjust_rerank")
STAGES += ("render", "encode", "write")
CLOCK = time.thread_time  # this thread's CPU time: the other jobs' turns are not counted
TABLES: dict[str, Any] = {"kind": "dict", "batch": 200}  # --tables, --batch


def messages(n: int) -> list[tuple[bytes, Any]]:
    """The bench's input as the worker consumes it: (value, Source) per event."""
    from stream_app.events import event_value
    from stream_app.kafka.producer import dataset_events
    from stream_app.processor import Source
    from stream_app.routing import partition_for
    from stream_app.settings import Settings

    s = Settings()
    offsets = [0] * s.partitions
    out = []
    events = dataset_events(DATASET if DATASET.exists() else None, 0)
    for i, (user, item, kind, _, category) in enumerate(itertools.islice(events, n)):
        value = event_value(user, item, kind, T0 + i, f"bench-{i}", category)
        p = partition_for(user.encode(), s.partitions)
        out.append((msgpack.packb(value, use_bin_type=True), Source(s.input_topic, p, offsets[p])))
        offsets[p] += 1
    return out


def pipeline() -> Any:
    """The worker's Processor over dict state (or ``--tables rocksdb``), the clock it
    reads pinned."""
    import stream_app.processor as proc
    from models.markov import DictTransitionStore
    from stream_app.components import State, build_components
    from stream_app.settings import Settings

    pinned = T0 + 86_400_000
    proc.time = types.SimpleNamespace(time=lambda: pinned / 1000)  # type: ignore[attr-defined]
    s = Settings().model_copy(update={"adjust": True})
    if TABLES["kind"] == "rocksdb":
        state = rocksdb_state(s)
    else:
        transitions = DictTransitionStore(s.markov_max_successors)
        state = State(users={}, transitions=transitions, feedback={})
    return build_components(s, state).processor


def rocksdb_state(s: Any) -> Any:
    """The worker's tables: Faust tables on RocksDB (never started: no broker) behind
    the batch loop's write-back, in a fresh directory removed at exit."""
    import faust
    from faust.types import TP

    from stream_app.components import State
    from stream_app.state.markov_store import TableTransitionStore
    from stream_app.state.write_back import WriteBack

    datadir = tempfile.mkdtemp(prefix="profile-worker-")
    atexit.register(shutil.rmtree, datadir, ignore_errors=True)
    app = faust.App("profile-worker", store="rocksdb://", datadir=datadir)
    names = ("users", "items", "feedback")
    tables = [
        app.Table(n, partitions=s.partitions, key_type=bytes, value_type=bytes) for n in names
    ]
    held = {TP(t.changelog_topic_name, p) for t in tables for p in range(s.partitions)}
    # What a table's iteration covers, which a started worker's assignment decides.
    app.assignor.__dict__["assigned_actives"] = lambda: held
    users, items, feedback = (WriteBack(t) for t in tables)
    transitions = TableTransitionStore(items, lambda: range(s.partitions), s.markov_max_successors)
    return State(users, transitions, feedback=feedback)


class PartitionEvent:
    """What a store asks of Faust's current event: its partition (weak-referenceable)."""

    def __init__(self, partition: int) -> None:
        self.message = types.SimpleNamespace(partition=partition)


def write_backs(processor: Any) -> list[Any]:
    """The processor's tables that hold writes per batch (none over dicts)."""
    from stream_app.state.write_back import WriteBack

    counts = getattr(processor.learner.store, "table", None)  # none in a DictTransitionStore
    tables = [counts, processor.users, processor.adjust.feedback.store]
    return [t for t in tables if isinstance(t, WriteBack)]


def run(processor: Any, msgs: list[tuple[bytes, Any]], sink: Callable[[Any], None]) -> float:
    """The batch loop's per-event path; CPU seconds taken (on a shared machine, wall
    time counts the other jobs' turns too)."""
    from stream_app.processor import ScoreRequest

    ingest, recommend = processor.ingest, processor.recommend
    stores = write_backs(processor)
    if stores:
        return run_batches(processor, stores, msgs, sink)
    start = CLOCK()
    for raw, src in msgs:
        result = ingest(raw, src)
        out = recommend([result]) if isinstance(result, ScoreRequest) else result
        for m in out:
            sink(m)
    return CLOCK() - start


def run_batches(
    processor: Any, stores: list[Any], msgs: list[tuple[bytes, Any]], sink: Callable[[Any], None]
) -> float:
    """:func:`run` over tables written once per batch of ``--batch`` events: each
    event as Faust's current event, then each batch's changelog records built (not
    sent) and its writes applied to RocksDB, as the batch loop does once delivered."""
    from stream_app.processor import ScoreRequest
    from stream_app.state.write_back import event_context

    ingest, recommend = processor.ingest, processor.recommend
    events = {p: PartitionEvent(p) for p in {src.partition for _, src in msgs}}
    size = TABLES["batch"]
    start = CLOCK()
    for at in range(0, len(msgs), size):
        for store in stores:
            store.begin()
        for raw, src in msgs[at : at + size]:
            with event_context(events[src.partition]):
                result = ingest(raw, src)
                out = recommend([result]) if isinstance(result, ScoreRequest) else result
            for m in out:
                sink(m)
        for store in stores:
            store.seal()
            store.records()
            store.apply(events, {})
    return CLOCK() - start


def digest(n: int) -> str:
    h = hashlib.sha256()

    def sink(m: Any) -> None:
        h.update(repr((m.topic, m.key, m.headers)).encode())
        h.update(m.value)

    p = pipeline()
    run(p, messages(n), sink)
    # And what the tables hold at the end (their changelogs' last records).
    for table in (p.users, p.adjust.feedback.store):
        for key in sorted(table):
            h.update(key)
            h.update(table[key])
    return h.hexdigest()


class Timers:
    """Wraps callables so each call's time adds to its stage."""

    def __init__(self) -> None:
        self.spent = dict.fromkeys((*STAGES, "ingest", "recommend"), 0.0)

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        spent, clock = self.spent, CLOCK

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[stage] += clock() - start

        return timed


def staged(msgs: list[tuple[bytes, Any]]) -> dict[str, float]:
    """Seconds per stage (``state`` and ``render``: what their calls leave over)."""
    import stream_app.processor as proc

    p = pipeline()
    t = Timers()
    saved = proc.parse, getattr(proc, "encode_value", None)
    proc.parse = t.wrap("decode", proc.parse)  # type: ignore[attr-defined]
    if hasattr(p, "_encode"):  # the Processor's own encoder
        p._encode = t.wrap("encode", p._encode)
    else:
        proc.encode_value = t.wrap("encode", proc.encode_value)  # type: ignore[attr-defined]
    try:
        p.learner.learn_one = t.wrap("markov_learn", p.learner.learn_one)
        p.adjust.observe = t.wrap("adjust_learn", p.adjust.observe)
        p.adjust.rerank = t.wrap("adjust_rerank", p.adjust.rerank)
        p.score = t.wrap("score", p.score)
        p.ingest = t.wrap("ingest", p.ingest)
        p.render = t.wrap("render_all", p.render)
        for store in write_backs(p):  # a batch's end: its held writes encoded and applied
            for name in ("seal", "records", "apply"):
                setattr(store, name, t.wrap("write", getattr(store, name)))
        t.spent["render_all"] = 0.0
        run(p, msgs, lambda m: None)
    finally:
        proc.parse = saved[0]  # type: ignore[attr-defined]
        if saved[1] is not None:
            proc.encode_value = saved[1]  # type: ignore[attr-defined]
    s = t.spent
    s["state"] = s["ingest"] - s["decode"] - s["markov_learn"] - s["adjust_learn"]
    s["render"] = s.pop("render_all") - s["adjust_rerank"] - s["encode"]
    return {k: s[k] for k in STAGES}


def code_commit() -> str | None:
    """The commit of the tree whose ``stream_app`` is imported (PYTHONPATH decides)."""
    import stream_app

    tree = Path(stream_app.__file__).resolve().parents[1]
    cmd = ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def plot(reports: dict[str, dict[str, Any]], path: Path) -> None:
    """Grouped bars: µs per event of each stage, one bar per report (e.g. before/after)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.2))
    width = 0.8 / len(reports)
    for n, (label, report) in enumerate(reports.items()):
        us = [report["stages_us"].get(k, 0.0) for k in STAGES]  # older reports: no writes
        xs = [i + (n - (len(reports) - 1) / 2) * width for i in range(len(STAGES))]
        bars = ax.bar(xs, us, width, label=f"{label}: {report['total_us']:.0f} µs/event")
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(range(len(STAGES)), [k.replace("_", "\n") for k in STAGES])
    ax.set_ylabel("µs per event (CPU time)")
    ax.set_title(f"streamrec worker, per-event path in-process ({reports[label]['events']} events)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3, help="clean passes; the best is kept")
    ap.add_argument("--digest", action="store_true", help="print the outputs' SHA-256 only")
    ap.add_argument("--against", type=Path, help="a tree whose outputs must be the same")
    ap.add_argument("--cprofile", type=Path, help="write cProfile stats of one pass here")
    ap.add_argument("--bench", type=float, help="bench_pipeline events/s, for Faust's share")
    ap.add_argument(
        "--tables",
        choices=("dict", "rocksdb"),
        default="dict",
        help="state in dicts, or in Faust RocksDB tables written once per batch",
    )
    ap.add_argument("--batch", type=int, default=200, help="events per batch (--tables rocksdb)")
    ap.add_argument("--out", type=Path, default=ROOT / "results/profile_worker.json")
    ap.add_argument(
        "--plot",
        nargs="+",
        metavar="LABEL=JSON",
        help="draw these reports (e.g. main=a.json branch=b.json) to --png, and stop",
    )
    ap.add_argument("--png", type=Path, default=ROOT / "docs/profile-worker.png")
    args = ap.parse_args(argv)
    TABLES.update(kind=args.tables, batch=args.batch)
    if args.digest:
        print(digest(args.events))
        return 0
    if args.plot:
        named = (spec.split("=", 1) for spec in args.plot)
        plot({label: json.loads(Path(f).read_text()) for label, f in named}, args.png)
        print(f"-> {args.png}")
        return 0
    msgs = messages(args.events)
    clean = min(run(pipeline(), msgs, lambda m: None) for _ in range(args.repeat))
    # Per stage, the best of the passes: the machine is shared, a pass can be slowed.
    passes = [staged(msgs) for _ in range(args.repeat)]
    stages = {k: min(p[k] for p in passes) for k in STAGES}
    if args.cprofile:
        args.cprofile.parent.mkdir(parents=True, exist_ok=True)
        prof = cProfile.Profile()
        p = pipeline()
        prof.runcall(run, p, msgs, lambda m: None)
        prof.dump_stats(args.cprofile)
    us = 1e6 / args.events
    report: dict[str, Any] = {
        "events": args.events,
        "total_us": clean * us,
        "events_per_s": args.events / clean,
        "stages_us": {k: v * us for k, v in stages.items()},
        "staged_total_us": sum(stages.values()) * us,
        "repeat": args.repeat,
        "tables": args.tables,
        "batch": args.batch if args.tables == "rocksdb" else None,
        "commit": code_commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    if args.bench:
        report["bench_events_per_s"] = args.bench
        report["faust_kafka_us"] = 1e6 / args.bench - report["total_us"]
    if args.against:
        ours = digest(args.events)
        env = {**os.environ, "PYTHONPATH": str(args.against.resolve())}
        cmd = [sys.executable, __file__, "--digest", "--events", str(args.events)]
        theirs = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        report["outputs_sha256"] = ours
        report["outputs_identical_to"] = {str(args.against): theirs.stdout.strip() == ours}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for k, v in report["stages_us"].items():
        print(f"{k:>14} {v:8.1f} µs")
    print(f"{'staged total':>14} {report['staged_total_us']:8.1f} µs")
    rate = report["events_per_s"]
    print(f"{'clean total':>14} {report['total_us']:8.1f} µs ({rate:.0f} events/s)")
    if args.against:
        print(f"outputs identical to {args.against}: {report['outputs_identical_to']}")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
