"""What the continual trainer buys: a real log replayed in time order, trainer on vs frozen.

Offline, on the served-model path (no broker, no worker processes: on a shared
2-core machine a full worker run would measure the machine, not the model).
The log is read in time order (:func:`models.datasets.read_events`). Its first
``--warmup-min`` minutes go through the trainer's real intake into its real
window, and the trainer's first round trains a model from scratch there
(``--warmup-epochs``); that model is the *frozen* one. The rest is replayed in
chunks of ``--chunk`` events: each event with an earlier event of its user is
scored first, prequentially, by the frozen model and by the *live* model (the
checkpoint the trainer's model directory holds), exactly as the worker's scorer
does (:class:`models.serving.scorer.NeuralScorer`, top 10, the model's own list
without the online adjuster); then the chunk goes into the trainer's window.
Every ``--interval-min`` minutes of stream time the trainer runs a round (the
service's own :class:`stream_app.trainer.service.Trainer`: fine-tune, gate,
promote into a versioned directory and repoint the link), and the live scorer
reloads a promoted version. Stream time stands still while a round trains; the
JSON records each round's seconds, to set against the interval.

    .venv/bin/python -m scripts.bench_trainer \\
        --dataset ../shared/datasets/rees46-oct2019-head/events.csv.gz --name rees46
    # -> docs/trainer-rees46.json and docs/trainer-rees46.png
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import msgpack
import torch

from models.base import Interaction
from models.datasets import Event, read_events
from models.serving.scorer import NeuralScorer
from stream_app.events import event_value
from stream_app.routing import partition_for
from stream_app.settings import Settings
from stream_app.trainer.service import Trainer

ROOT = Path(__file__).resolve().parents[1]
K = 10
MIN_PLOTTED = 100  # bins with fewer scored events stay in the JSON, off the plot (noise)


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True)
    return out.stdout.decode().strip()


class Replay:
    """The trainer, the two scorers and the prequential tallies of one run."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.settings = Settings(
            model_dir=workdir / "current",
            trainer_dir=workdir / "trainer",
            device="cpu",
            partitions=4,
            trainer_min_events=2,
            trainer_holdout_events=args.holdout,
            trainer_epochs=args.epochs,
            trainer_dim=args.dim,
            trainer_window_events=args.window_events,
            trainer_keep=2,
            trainer_transition_weight=args.transition_weight,
        )
        self.trainer = Trainer(self.settings)
        self.histories: dict[str, deque[Interaction]] = defaultdict(lambda: deque(maxlen=50))
        self.live: NeuralScorer | None = None
        self.frozen: NeuralScorer | None = None
        self.rounds: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []  # one per scored event

    def feed(self, events: list[Event]) -> None:
        """Events into the trainer's window through its intake (the workers' rules)."""
        for user, item, kind, ts, category in events:
            raw = msgpack.packb(event_value(user, item, kind, ts, category=category))
            self.trainer.intake.take(raw, partition_for(user.encode(), 4), [])
            self.histories[user].append(Interaction(item, kind, ts))

    async def round(self, stream_ts: int) -> None:
        """One trainer round at this point of stream time; reload the live model if promoted."""
        self.trainer.last_result = None
        self.trainer.start_round()
        await self.trainer.wait_round()
        r = self.trainer.last_result
        current = self.trainer.current
        promoted = current is not None and (
            self.live is None or current.version != self.live.version
        )
        if promoted:
            assert self.settings.model_dir is not None
            self.live = NeuralScorer.load(self.settings.model_dir, "cpu", influence_method="none")
        self.rounds.append(
            {
                "stream_ts": stream_ts,
                "promoted": promoted,
                "version": self.live.version if self.live else None,
                "vocab": len(current.vocab) if current else 0,
                "window_events": self.trainer.window.total,
                "seconds": r.seconds if r else None,
                "examples": r.examples if r else 0,
                "new_items": r.new_items if r else 0,
                "reference": r.reference if r else None,
                "candidate_ndcg10": r.candidate["NDCG@10"] if r else None,
                "current_ndcg10": r.current["NDCG@10"] if r else None,
            }
        )
        print(json.dumps(self.rounds[-1]), flush=True)

    def score(self, events: list[Event]) -> None:
        """Prequential top-10 of both models for every event whose user has a history."""
        assert self.live is not None and self.frozen is not None
        todo, seen = [], dict(self.histories)
        local: dict[str, list[Interaction]] = {}
        for user, item, kind, ts, _ in events:
            history = local.setdefault(user, list(seen.get(user, ())))
            if history:
                todo.append((user, item, ts, list(history)))
            history.append(Interaction(item, kind, ts))
            del history[:-50]
        if not todo:
            return
        frozen_vocab = self.frozen._ckpt.vocab
        lists = {
            name: scorer.score([h for *_, h in todo], K)
            for name, scorer in (("frozen", self.frozen), ("live", self.live))
        }
        for n, (_, item, ts, _) in enumerate(todo):
            row: dict[str, Any] = {"ts": ts, "target_new": frozen_vocab.index(item) < 2}
            for name, scored in lists.items():
                top = [i for i, _ in scored[n].items]
                rank = top.index(item) if item in top else None
                row[name] = 0.0 if rank is None else 1.0 / math.log2(rank + 2)
            live_top = [i for i, _ in lists["live"][n].items]
            row["live_names_new"] = any(frozen_vocab.index(i) < 2 for i in live_top)
            self.rows.append(row)


async def replay(args: argparse.Namespace, workdir: Path) -> Replay:
    events = list(read_events(Path(args.dataset)))
    if args.limit:
        events = events[: args.limit]
    run = Replay(args, workdir)
    start = events[0][3]
    warm_end = start + int(args.warmup_min * 60_000)
    n_warm = next((n for n, e in enumerate(events) if e[3] >= warm_end), len(events))
    run.feed(events[:n_warm])
    t = run.trainer
    t.cfg = dataclasses.replace(t.cfg, epochs=args.warmup_epochs)
    await run.round(warm_end)
    t.cfg = dataclasses.replace(t.cfg, epochs=args.epochs)
    if run.live is None:
        raise SystemExit("the first model did not pass the gate against popularity; no replay")
    run.frozen = run.live
    interval = int(args.interval_min * 60_000)
    next_round = warm_end + interval
    rest = events[n_warm:]
    for i in range(0, len(rest), args.chunk):
        chunk = rest[i : i + args.chunk]
        if chunk[0][3] >= next_round:
            await run.round(chunk[0][3])
            next_round += interval * max(1, (chunk[0][3] - next_round) // interval + 1)
        run.score(chunk)
        run.feed(chunk)
    return run


def summarise(run: Replay, start: int, bin_ms: int) -> dict[str, Any]:
    bins: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in run.rows:
        bins[(row["ts"] - start) // bin_ms].append(row)

    def stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
        n = max(len(rows), 1)
        return {
            "events": len(rows),
            "frozen_ndcg10": sum(r["frozen"] for r in rows) / n,
            "live_ndcg10": sum(r["live"] for r in rows) / n,
            "frozen_hr10": sum(r["frozen"] > 0 for r in rows) / n,
            "live_hr10": sum(r["live"] > 0 for r in rows) / n,
            "share_live_lists_naming_new_items": sum(r["live_names_new"] for r in rows) / n,
            "share_targets_new_to_frozen": sum(r["target_new"] for r in rows) / n,
        }

    over_time = [
        {"minute": (b * bin_ms) / 60_000, **stats(rows)} for b, rows in sorted(bins.items())
    ]
    return {"overall": stats(run.rows), "over_time": over_time}


def plot(result: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["over_time"] if r["events"] >= MIN_PLOTTED]
    minutes = [r["minute"] for r in rows]
    fig, (ax, ax_new) = plt.subplots(1, 2, figsize=(12, 4))
    ax.plot(minutes, [r["frozen_ndcg10"] for r in rows], marker="o", label="frozen at start")
    ax.plot(minutes, [r["live_ndcg10"] for r in rows], marker="o", label="trainer on")
    start = result["start_ts"]
    for r in result["rounds"][1:]:
        if r["promoted"]:
            ax.axvline((r["stream_ts"] - start) / 60_000, color="grey", alpha=0.3)
    ax.set(xlabel="stream minute", ylabel="prequential NDCG@10", title="served model, live")
    ax.legend()
    ax_new.plot(
        minutes,
        [r["share_live_lists_naming_new_items"] for r in rows],
        marker="o",
        label="live lists naming an item the frozen model lacks",
    )
    ax_new.plot(
        minutes,
        [r["share_targets_new_to_frozen"] for r in rows],
        marker="o",
        label="next events on such items",
    )
    ax_new.set(xlabel="stream minute", ylabel="share of scored events", title="new items")
    ax_new.legend()
    fig.suptitle(f"{title} (grey: promotions; bins of {MIN_PLOTTED}+ scored events)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def provenance(script: str, argv: list[str] | None, started: float, code: str) -> dict[str, Any]:
    """The command, commit, date and machine a result was measured with."""
    return {
        "command": f"python -m scripts.{script} "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": code,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "device": "cpu"},
    }


def add_round_options(ap: argparse.ArgumentParser) -> None:
    """The log's warm-up and the trainer's rounds, as both replays (offline, live) take them."""
    ap.add_argument("--limit", type=int, default=0, help="first N events only")
    ap.add_argument("--warmup-min", type=float, default=30.0)
    ap.add_argument("--warmup-epochs", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--holdout", type=int, default=500)
    ap.add_argument("--window-events", type=int, default=200_000)
    ap.add_argument(
        "--transition-weight", type=float, default=1.0, help="STREAMREC_TRAINER_TRANSITION_WEIGHT"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--name", required=True, help="docs/trainer-<name>.json and .png")
    add_round_options(ap)
    ap.add_argument("--interval-min", type=float, default=10.0, help="stream minutes per round")
    ap.add_argument("--bin-min", type=float, default=10.0, help="stream minutes per reported bin")
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    started, code = time.time(), commit()
    with tempfile.TemporaryDirectory() as tmp:
        run = asyncio.run(replay(args, Path(tmp)))
    start = run.rounds[0]["stream_ts"] - int(args.warmup_min * 60_000)
    result = {
        **provenance("bench_trainer", argv, started, code),
        "wall_seconds": time.time() - started,
        "settings": {k: v for k, v in vars(args).items()},
        "start_ts": start,
        "frozen_version": run.frozen.version if run.frozen else None,
        "frozen_vocab": len(run.frozen._ckpt.vocab) if run.frozen else 0,
        "rounds": run.rounds,
        **summarise(run, start, int(args.bin_min * 60_000)),
    }
    out = ROOT / "docs" / f"trainer-{args.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, out.with_suffix(".png"), f"{args.name}: trainer on vs frozen")
    print(json.dumps(result["overall"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
