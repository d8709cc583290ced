"""Where a running worker's time goes: py-spy samples grouped by stage, and a picture.

:func:`attach` starts ``py-spy record`` on a worker process (non-blocking: the
worker is never paused) and writes its collapsed stacks when the worker exits.
:func:`shares` sorts every sample into one stage by the frames on its stack, the
most specific first: the adjuster (``stream_app/adjustment``, ``models/rerank``,
river), the Markov scorer, decode, render and encode, state (the Processor's
other work, the tables), producing (the batch's sends and the Kafka producer),
consuming (the Kafka fetcher), Faust's own machinery (streams, consumer,
conductor, ``mode``), and the rest (the event loop and sockets, garbage
collection, idle); module imports and the stores' opening, revocation and
closing count as start-up and stop.
``python scripts/worker_flame.py STACKS.txt [...] --plot PNG`` prints each file's
shares and draws them side by side.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

# (stage, substrings of a frame), tried on each frame from the innermost out: a
# sample goes to the stage of the innermost frame that names one.
FRAMES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("adjust", ("stream_app/adjustment.py", "models/rerank/", "/river/")),
    ("score (Markov)", ("models/markov.py", "stream_app/state/markov_store.py")),
    ("decode, render, encode", ("stream_app/events.py", "serializers.py", "outgoing.py")),
    ("decode, render, encode", ("render (",)),
    ("produce", ("send (stream_app/state/write_back.py", "deliver (stream_app/batch_loop.py")),
    ("produce", ("aiokafka/producer", "aiokafka/record", "faust/transport/producer")),
    ("state", ("stream_app/", "faust/stores/", "faust/tables/", "rocksdict")),
    ("consume", ("aiokafka/consumer",)),
    ("Faust", ("faust/", "mode/")),
)
STAGES = tuple(dict.fromkeys(stage for stage, _ in FRAMES))
OTHER = "event loop, sockets, other"
START = "start-up and stop"
# Module imports, and the stores opened, revoked and closed around the run.
START_MARKS = ("importlib._bootstrap", "on_rebalance (", "Store.stop (", "_open_for_partition (")


def attach(pid: int, out: Path, rate: int = 250) -> subprocess.Popen[bytes]:
    """Sample process ``pid`` until it exits; its collapsed stacks go to ``out``."""
    beside = Path(sys.executable).with_name("py-spy")  # the venv's, when not on PATH
    spy = shutil.which("py-spy") or (str(beside) if beside.exists() else None)
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    argv = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate)]
    argv += ["--nonblocking", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stage_of(stack: str) -> str:
    if any(m in stack for m in START_MARKS):
        return START
    for frame in reversed(stack.split(";")):
        for stage, marks in FRAMES:
            if any(m in frame for m in marks):
                return stage
    return OTHER


def shares(stacks: Path) -> dict[str, float]:
    """Each stage's share of the samples in a py-spy ``raw`` file (idle included)."""
    counts: dict[str, int] = {}
    for line in stacks.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            stage = stage_of(stack)
            counts[stage] = counts.get(stage, 0) + int(n)
    total = sum(counts.values()) or 1
    return {s: counts[s] / total for s in (*STAGES, OTHER, START) if s in counts}


def stage_cpu(stacks: Path, cpu_us: float) -> dict[str, float]:
    """CPU µs per event by stage: the shares of the samples outside start-up and stop,
    times the worker's CPU µs per event over the timed span."""
    timed = {k: v for k, v in shares(stacks).items() if k != START}
    total = sum(timed.values()) or 1.0
    return {k: v / total * cpu_us for k, v in timed.items()}


def plot(profiles: dict[str, dict[str, float]], png: Path, xlabel: str | None = None) -> None:
    """One stacked bar per profile: each stage's share (or, with ``xlabel``, its value)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(dict.fromkeys(s for p in profiles.values() for s in p))
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.6 * len(profiles)))
    left = [0.0] * len(profiles)
    for stage in stages:
        widths = [(1 if xlabel else 100) * p.get(stage, 0.0) for p in profiles.values()]
        ax.barh(list(profiles), widths, left=left, label=stage)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_xlabel(xlabel or "% of the worker's samples (py-spy, under load)")
    ax.set_xlim(0, max(left) * 1.02 if xlabel else 100)
    ax.invert_yaxis()
    ax.legend(ncol=3, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stacks", nargs="*", help="LABEL=FILE or FILE: py-spy raw output")
    ap.add_argument("--plot", type=Path, help="write a PNG of the shares")
    ap.add_argument(
        "--bench",
        type=Path,
        help="instead: bench_pipeline.py --profile's JSON; plot each run's CPU µs per stage",
    )
    args = ap.parse_args(argv)
    profiles = {}
    for spec in args.stacks:
        label, _, path = spec.rpartition("=")
        profiles[label or Path(path).stem] = shares(Path(path))
    if args.bench:
        runs = json.loads(args.bench.read_text())["runs"]
        profiles = {
            r["name"]: stage_cpu(Path(r["py_spy_stacks"]), r["worker_cpu_us_per_event"])
            for r in runs
            if "py_spy_stacks" in r
        }
    print(json.dumps(profiles, indent=2))
    if args.plot:
        xlabel = "worker CPU µs per event (py-spy shares x CPU time)" if args.bench else None
        plot(profiles, args.plot, xlabel)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
