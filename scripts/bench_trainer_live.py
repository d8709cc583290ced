"""The continual trainer's benefit through real processes: broker, worker, trainer.

A real log is replayed in time order into the input topic of an embedded broker
(free ports), faster than real time (``--speedup``) and at most ``--max-rate``
events per second. A worker serves a checkpoint from ``STREAMREC_MODEL_DIR``
with hot reload; its recommendations are read from the output topic. Twice,
from the same start: with ``streamrec trainer`` running beside the worker
(**on**), and without it (**frozen**: the worker serves the first model all
along). The first model comes from the log's first ``--warmup-min`` minutes,
one round of the service's own ``Trainer`` (as in ``scripts.bench_trainer``);
its window snapshot seeds the live trainer, and those warm-up events are
produced first, unpaced and unscored, so the worker knows its users.

Prequential quality: each recommendation answers one event (its
``source_event_id``); its target is that user's next event in the log. NDCG@10
and HR@10 of the served list against it, by stream minute of the target; also
the share of lists naming an item the first model does not know, and which
model version served each list. The trainer's rounds (from its log) and the
machine's load average go into the JSON.

    nice -n 19 .venv/bin/python -m scripts.bench_trainer_live \\
        --dataset ../shared/datasets/rees46-oct2019-head/events.csv.gz --name rees46 \\
        --warmup-min 130 --speedup 6
    # -> docs/trainer-live-rees46.json and .png

``--smoke`` replays a few hundred events of a synthetic log in seconds, to check
the plumbing (nothing is written under docs/).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.bench_trainer import add_round_options, provenance
from scripts.bench_trainer_live_report import plot, stats, summarise
from scripts.bench_trainer_live_run import LiveRun, Log, load_log, warm_up

ROOT = Path(__file__).resolve().parents[1]


def commit() -> str:
    import subprocess

    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True)
    return out.stdout.decode().strip()


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", help="a log with timestamps (read_events formats)")
    ap.add_argument("--name", default="smoke", help="docs/trainer-live-<name>.json and .png")
    add_round_options(ap)
    ap.add_argument("--speedup", type=float, default=6.0, help="stream seconds per wall second")
    ap.add_argument("--max-rate", type=float, default=60.0, help="events per second at most")
    ap.add_argument("--interval-s", type=float, default=45.0, help="trainer round, wall seconds")
    ap.add_argument("--bin-min", type=float, default=5.0, help="stream minutes per bin")
    ap.add_argument("--modes", default="on,frozen")
    ap.add_argument("--workdir", help="where the runs' temporary directory goes")
    ap.add_argument("--smoke", action="store_true", help="a synthetic log, seconds, no docs")
    args = ap.parse_args(argv)
    if args.smoke:
        args.warmup_min, args.warmup_epochs, args.speedup, args.interval_s = 2, 2, 60, 3
        args.holdout, args.max_rate, args.bin_min = 50, 200, 1
    elif not args.dataset:
        ap.error("--dataset is required unless --smoke")
    return args


def run_modes(args: argparse.Namespace, log: Log, tmp: Path) -> dict[str, Any]:
    frozen_dir, snapshot = warm_up(args, log, tmp / "warm")
    out: dict[str, Any] = {}
    for mode in args.modes.split(","):
        run = LiveRun(args, log, tmp / mode, mode, None)  # a broker of its own, on free ports
        out[mode] = run.go(frozen_dir, snapshot)
        r = out[mode]
        print(json.dumps({mode: stats(r["scored"]), "recs": r["recommendations"]}), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started, load_before, code = time.time(), os.getloadavg(), commit()
    log = load_log(args)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        runs = run_modes(args, log, Path(tmp))
    result = {
        **provenance("bench_trainer_live", argv, started, code),
        "load_average_before": load_before,
        "wall_seconds": time.time() - started,
        "settings": vars(args),
        "events": len(log.events),
        "warmup_events": log.n_warm,
        "start_ts": log.start,
        "runs": runs,
    }
    summary = summarise(result, args.bin_min)
    print(json.dumps(summary, indent=2))
    if args.smoke:
        for mode, run in runs.items():
            if not run["scored"]:
                raise SystemExit(f"smoke: no recommendation of mode {mode} was scored")
        return 0
    out = ROOT / "docs" / f"trainer-live-{args.name}.json"
    plot(result, out.with_suffix(".png"), args.bin_min, f"{args.name}, live: trainer on vs frozen")
    for run in runs.values():  # one row per scored list: megabytes, summarised above
        del run["scored"]
    out.write_text(json.dumps({**result, "summary": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
