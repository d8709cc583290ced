"""``replay-eval`` speed, this tree against another commit, runs interleaved.

The machine's speed drifts from one minute to the next, so a speed-up is only
told by runs of both codes taken in turns. Each round runs ``streamrec
replay-eval`` once per log and per code (this working tree, then ``--against``
checked out into a temporary git worktree), each in a fresh interpreter, and
checks that both reports agree on everything but the timing (a speed-up must
not change a result). Writes every run, the medians and their ratio::

    .venv/bin/python scripts/bench_replay.py --against HEAD~2 --rounds 3
    # -> results/bench_replay.json

Before each replay a fixed pure-Python probe (:func:`probe`) is timed, so that
runs of different sessions can be told apart from the machine's own drift.

``--workers 1,2`` compares worker counts of this tree instead (``replay-eval
--workers``). Their results differ by design (each worker learns from its share
of the users), so each count is checked against its own first round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
LOGS = {
    "taobao": DATASETS / "taobao-userbehavior" / "timeslice_20171126.csv.gz",
    "rees46": DATASETS / "rees46-oct2019-head" / "events.csv.gz",
}
TIMING = ("seconds", "events_per_s")
Speeds = dict[str, dict[str, list[float]]]  # log -> code -> one number per round


def replay(tree: Path, log: Path, out: Path, limit: int | None, workers: int = 1) -> dict[str, Any]:
    """One ``replay-eval`` of ``log`` by the code in ``tree``, in a fresh interpreter."""
    # The CLI, not a module path: it names the same command in every commit.
    cmd = [sys.executable, "-m", "stream_app", "replay-eval", "--events", str(log)]
    cmd += ["--json", str(out)] + (["--limit", str(limit)] if limit else [])
    cmd += ["--workers", str(workers)] if workers != 1 else []
    # Run from outside any tree, so that PYTHONPATH (not the editable install) decides.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(cmd, env=env, cwd=tempfile.gettempdir(), check=True, capture_output=True)
    return json.loads(out.read_text())


def probe(n: int = 50_000) -> float:
    """Seconds for a fixed workload of the replay's kind (small dicts, tuples, sorts,
    string keys): the machine's speed at that moment. Best of three."""

    def once() -> float:
        start = time.perf_counter()
        counts: dict[str, int] = {}
        top: list[tuple[int, str]] = []
        for i in range(n):
            key = f"i{i % 5003}"
            counts[key] = counts.get(key, 0) + 1
            if i % 50 == 0:
                top = sorted(((c, k) for k, c in list(counts.items())[-20:]), reverse=True)[:10]
        assert top
        return time.perf_counter() - start

    return min(once() for _ in range(3))


def results_only(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in TIMING and k != "workers"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", default="HEAD", help="git commit to compare with (default HEAD)")
    ap.add_argument("--workers", help="compare these worker counts of this tree instead: 1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--logs", default="taobao,rees46", help=f"of {', '.join(LOGS)}")
    ap.add_argument("--limit", type=int, help="replay only the first N events of each log")
    ap.add_argument("--json", type=Path, default=ROOT / "results" / "bench_replay.json")
    args = ap.parse_args(argv)
    logs = {name: LOGS[name] for name in args.logs.split(",")}
    missing = [str(p) for p in logs.values() if not p.exists()]
    if missing:
        ap.error(f"missing log(s): {', '.join(missing)}")

    counts = [int(w) for w in args.workers.split(",")] if args.workers else None
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        if counts is None:
            other = Path(tmp) / "against"
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(other), args.against],
                check=True,
                capture_output=True,
            )
            codes = {"this": (ROOT, 1), args.against: (other, 1)}
        else:
            codes = {f"workers={w}": (ROOT, w) for w in counts}
        try:
            speeds, probes, same = _rounds(
                codes, logs, args.rounds, args.limit, Path(tmp), counts is None
            )
        finally:
            if counts is None:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)],
                    check=False,
                    capture_output=True,
                )

    # The ratio: this code over the other one; the most workers over the first count.
    tags = list(codes)
    first, last = (tags[0], tags[1]) if counts is None else (tags[-1], tags[0])
    summary: dict[str, Any] = {}
    for name, by_tree in speeds.items():
        medians = {tag: statistics.median(v) for tag, v in by_tree.items()}
        summary[name] = {
            "events_per_s": by_tree,
            "median": medians,
            # the probe's seconds just before each of those runs (lower: faster machine)
            "probe_s": probes[name],
            "ratio": medians[first] / medians[last],
            "same_results": same[name],
        }
        print(
            f"{name}: {first} {medians[first]:.0f} vs {last} "
            f"{medians[last]:.0f} events/s (x{summary[name]['ratio']:.2f}), probe "
            f"{statistics.median(p for ps in probes[name].values() for p in ps):.3f} s, "
            f"results {'as expected' if same[name] else 'DIFFERENT'}",
            file=sys.stderr,
        )
    report = {
        "against": args.against if counts is None else None,
        "workers": counts,
        "rounds": args.rounds,
        "limit": args.limit,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "logs": summary,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"-> {args.json}", file=sys.stderr)
    return 0 if all(same.values()) else 1


def _rounds(
    codes: dict[str, tuple[Path, int]],
    logs: dict[str, Path],
    rounds: int,
    limit: int | None,
    tmp: Path,
    across: bool,
) -> tuple[Speeds, Speeds, dict[str, bool]]:
    """Every code on every log, in turns; ``across``: all codes must agree on the
    results, else each code with its own first round."""
    speeds: Speeds = {n: {t: [] for t in codes} for n in logs}
    probes: Speeds = {n: {t: [] for t in codes} for n in logs}
    same: dict[str, bool] = {n: True for n in logs}
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    with tqdm(total=rounds * len(logs) * len(codes), desc="replays", unit="run") as bar:
        for _ in range(rounds):
            for name, log in logs.items():
                for tag, (tree, workers) in codes.items():
                    probes[name][tag].append(probe())
                    report = replay(tree, log, tmp / f"{name}.json", limit, workers)
                    speeds[name][tag].append(report["events_per_s"])
                    key = (name, "all" if across else tag)
                    same[name] &= seen.setdefault(key, results_only(report)) == results_only(report)
                    bar.update()
    return speeds, probes, same


if __name__ == "__main__":
    raise SystemExit(main())
