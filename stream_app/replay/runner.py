"""``streamrec replay-eval``: replay an event log through the worker's own code path,
in-process and deterministic, and measure recommendation quality prequentially.

For each event, in timestamp order:

1. it is scored against the lists last published to its user (skipped for a
   user's first event and for a refresh: the same item as the user's previous
   event), for every variant below;
2. the feedback join labels the user's open lists with it and the adjuster
   learns from the lists it closes;
3. it is applied to state (``Processor.ingest``: validation, per-user history,
   the online Markov model learns);
4. the scorer ranks the user's next items, the ranker adds candidates and
   re-ranks them with the adjuster, and the lists are "published".

The purchase-propensity head's prediction made with each list is scored by
the user's next event (``purchase``: accuracy, precision, recall, F1, ROC AUC,
Brier; refreshes included, see :mod:`stream_app.adjustment`).

Variants: ``popularity`` (items trending now), ``base`` (the scorer alone),
``adjusted`` (scorer + adjuster), and fixed hand-made blends of the scorer's top
items, the user's most recent other items and the items trending in the
current item's category (``fixed``; the best one is named in ``best_fixed``).

    D=../shared/datasets/taobao-userbehavior
    streamrec replay-eval --events $D/timeslice_20171126.csv.gz --json results/replay_taobao.json
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from models.base import Scorer
from models.datasets import FORMATS, Event, read_events
from models.markov import DictTransitionStore
from models.rerank.base import Adjuster
from models.rerank.features import recent_items
from models.rerank.quality import ClassificationQuality, Prequential
from stream_app.components import State, build_components
from stream_app.events import event_value
from stream_app.processor import ScoreRequest, Source
from stream_app.replay.workers import Tick, owner, run_split
from stream_app.routing import partition_for
from stream_app.settings import Settings

# Hand-made blends, all measured: the sources in order, how many items each, then
# filled up to k from the scorer. "recent": the user's most recent other items;
# "base": the scorer's top; "category": trending now in the current item's category.
Spec = tuple[tuple[str, int], ...]
FIXED: list[Spec] = [
    (("base", 5), ("recent", 5)),
    (("recent", 5), ("base", 5)),
    (("recent", 7), ("base", 3)),
    (("recent", 3), ("base", 7)),
    (("recent", 10),),
    (("recent", 8), ("base", 2)),
    (("recent", 7), ("category", 3)),
    (("recent", 5), ("category", 5)),
    (("recent", 4), ("category", 6)),
    (("recent", 3), ("category", 7)),
    (("recent", 2), ("category", 8)),
    (("recent", 1), ("category", 9)),
    (("recent", 5), ("base", 2), ("category", 3)),
    (("recent", 3), ("base", 2), ("category", 5)),
    (("category", 5), ("recent", 5)),
]


def fixed_name(spec: Spec) -> str:
    """``recent7+base3``: seven recent items, then the scorer's top three."""
    return "+".join(f"{source}{n}" for source, n in spec)


def fixed_list(sources: dict[str, list[str]], spec: Spec, k: int) -> list[str]:
    """
    >>> fixed_list({"base": ["a", "b", "c"], "recent": ["b", "x"]}, (("recent", 1), ("base", 1)), 3)
    ['b', 'a', 'c']
    """
    merged = dict.fromkeys(item for source, n in spec for item in sources[source][:n])
    if len(merged) < k:  # fill up to k from the scorer
        for item in sources["base"]:
            merged[item] = None
            if len(merged) >= k:
                break
    return list(merged)[:k]


def replay_settings(alpha: float | None = None, model: str | None = None) -> Settings:
    """The worker's settings for a replay: any event time is accepted (the log is
    old), and the adjuster is on (``alpha``, ``model``: default, the environment's)."""
    env = Settings(max_lateness_ms=10**15, max_future_ms=10**15, history_len=50)
    return env.model_copy(
        update={
            "adjust": True,
            "adjust_alpha": env.adjust_alpha if alpha is None else alpha,
            "adjust_model": env.adjust_model if model is None else model,
            # The reports' protocol, whatever the environment says.
            "top_k": 10,
            "purchase_threshold": 0.5,
        }
    )


class Replay:
    def __init__(self, settings: Settings, scorer: Scorer | None = None) -> None:
        """The worker's pipeline (:func:`~stream_app.components.build_components`) over
        in-memory state; ``scorer``: a trained model, or None for the online Markov model."""
        self.settings = settings
        self.k = settings.top_k
        state = State(users={}, transitions=DictTransitionStore(settings.markov_max_successors))
        parts = build_components(settings, state, scorer)
        if parts.adjust is None:
            raise ValueError("a replay measures the adjuster: settings.adjust must be on")
        self.scorer = parts.scorer
        self.online = parts.adjust
        self.processor = parts.processor
        self.fixed = [(fixed_name(f), f) for f in FIXED]
        names = ["popularity", *(n for n, _ in self.fixed)]
        self.quality = {n: Prequential(self.k, window=0) for n in names}
        # Per user, what the baselines were built from: trending, and the sources of
        # the fixed blends, which are built only if the user comes back.
        self.published: dict[str, tuple[list[str], dict[str, list[str]]]] = {}
        self.previous_item: dict[str, str] = {}
        self.events = 0
        self.rejected = 0
        self.purchases: list[tuple[int, bool, float]] = []  # each scored prediction

    @property
    def adjuster(self) -> Adjuster:
        return self.online.adjuster

    def message(self, offset: int, event: Event) -> tuple[bytes, Source]:
        """The event as the worker would consume it: its bytes and where they came from
        (a keyed producer's partition). The producer's work: not timed."""
        user, item, event_type, ts, category = event
        value = event_value(user, item, event_type, ts, category=category)
        partition = partition_for(user.encode(), self.settings.partitions)
        return msgpack.packb(value), Source(self.settings.input_topic, partition, offset)

    def step(self, event: Event, raw: bytes, src: Source) -> None:
        user, item, _, ts, _ = event
        self.events += 1
        published = self.published.get(user)
        refresh = self.previous_item.get(user) == item
        if published is not None and not refresh:
            trending, sources = published
            self.quality["popularity"].add(trending, item)
            if any(item in items for items in sources.values()):
                for name, spec in self.fixed:
                    self.quality[name].add(fixed_list(sources, spec, self.k), item)
            else:  # a miss for every blend: no need to build them
                for name, _ in self.fixed:
                    self.quality[name].miss()
        self.previous_item[user] = item
        # The worker's path: validation, state, Markov learning, and the adjuster's
        # evaluation of the user's last lists and its learning (OnlineAdjustment.observe).
        scored = self.online.purchase_quality.events
        request = self.processor.ingest(raw, src)
        last = self.online.purchase_quality.last
        if self.online.purchase_quality.events != scored and last is not None:
            self.purchases.append((src.offset, *last))
        if not isinstance(request, ScoreRequest):
            self.rejected += 1
            return
        self.publish(user, request, ts)

    def publish(self, user: str, request: ScoreRequest, ts: int) -> None:
        history = request.history
        base = self.scorer.score([history], self.online.base_k)[0]
        self.online.rerank(user, history, base)  # what Processor.recommend publishes
        signals = self.online.signals
        trending = signals.trending(self.k)
        current = history[-1].item_id if history else None
        in_category = [
            i for i in signals.trending_in(signals.category(current), 11) if i != current
        ]
        sources = {
            "base": [i for i, _ in base.items],
            "recent": recent_items(history, 10),
            "category": in_category[:10],
        }
        self.published[user] = (trending, sources)

    def timed(
        self, events: list[tuple[int, Event]], messages: list[tuple[bytes, Source]], tick: Tick
    ) -> Share:
        """Replay ``events`` (with their offsets in the log) and time it."""
        # The log is read once and only read from then on: keep the garbage collector
        # from walking its million objects again at every full collection. The replay
        # allocates many small objects and makes almost no cycles, so collect less
        # often too (measured: about 20% faster on the Taobao slice).
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(20_000, 50, 100)
        start = time.perf_counter()
        try:
            for n, ((_, event), (raw, src)) in enumerate(zip(events, messages, strict=True)):
                self.step(event, raw, src)
                if not n & 1023:
                    tick(n)
            tick(len(events))
        finally:
            seconds = time.perf_counter() - start
            gc.set_threshold(*thresholds)
            gc.unfreeze()
        return self.share(seconds)

    def share(self, seconds: float = 0.0) -> Share:
        """What this replay adds to the report (:func:`merged`)."""
        return Share(
            quality={**self.quality, **self.online.quality},
            purchases=self.purchases,
            threshold=self.online.purchase_quality.threshold,
            events=self.events,
            rejected=self.rejected,
            adjuster=self.adjuster.name,
            examples=self.adjuster.examples,
            drift=dict(self.online.drift.detections),
            seconds=seconds,
        )

    def report(self) -> dict[str, Any]:
        return merged([self.share()], self.k)


@dataclass
class Share:
    """One worker's results, to be merged with the others' into the report."""

    quality: dict[str, Prequential]  # every list variant
    purchases: list[tuple[int, bool, float]]  # (offset, bought, P(purchase)), in log order
    threshold: float
    events: int
    rejected: int
    adjuster: str
    examples: int
    drift: dict[str, int]
    seconds: float


def merged(shares: list[Share], k: int = 10) -> dict[str, Any]:
    """The report of one or more workers' shares: lists' quality over all their
    events, and the purchase head's scored in log order."""
    quality = {name: Prequential(k, window=0) for name in shares[0].quality}
    purchase = ClassificationQuality(shares[0].threshold)
    for share in shares:
        for name, q in share.quality.items():
            quality[name].merge(q)
    for _, bought, p in heapq.merge(*(s.purchases for s in shares)):
        purchase.add(bought, p)
    out: dict[str, Any] = {name: q.summary() for name, q in quality.items()}
    fixed = {fixed_name(f): out.pop(fixed_name(f)) for f in FIXED}
    best = max(fixed, key=lambda n: fixed[n][f"NDCG@{k}"])
    out["fixed"] = fixed
    out["best_fixed"] = best
    base_ndcg = out["base"][f"NDCG@{k}"]
    adj_ndcg = out["adjusted"][f"NDCG@{k}"]
    out["lift_ndcg_vs_base"] = adj_ndcg / base_ndcg - 1 if base_ndcg else None
    best_ndcg = fixed[best][f"NDCG@{k}"]
    out["lift_ndcg_vs_best_fixed"] = adj_ndcg / best_ndcg - 1 if best_ndcg else None
    out["events_replayed"] = sum(s.events for s in shares)
    out["events_rejected"] = sum(s.rejected for s in shares)
    out["adjuster"] = {"name": shares[0].adjuster, "examples": sum(s.examples for s in shares)}
    out["purchase"] = purchase.summary()
    drift: dict[str, int] = {}
    for share in shares:
        for name, n in share.drift.items():
            drift[name] = drift.get(name, 0) + n
    out["drift_detections"] = drift
    return out


def run(
    path: Path,
    fmt: str | None = None,
    scorer: Scorer | None = None,
    alpha: float | None = None,
    limit: int | None = None,
    progress: bool = True,
    model: str | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Replay ``path`` and report. ``workers`` > 1: that many forked workers, each
    replaying the users of its input partitions (:mod:`stream_app.replay.workers`)."""
    settings = replay_settings(alpha, model)
    if not 1 <= workers <= settings.partitions:
        raise ValueError(f"workers must be 1..{settings.partitions} (the input partitions)")
    events = list(read_events(path, fmt))[:limit]

    def prepare(worker: int) -> Callable[[Tick], Share]:
        replay = Replay(settings, scorer)
        mine = [
            (offset, event)
            for offset, event in enumerate(events)
            if workers == 1 or owner(event[0], settings.partitions, workers) == worker
        ]
        messages = [replay.message(offset, event) for offset, event in mine]
        return lambda tick: replay.timed(mine, messages, tick)

    shares, seconds = run_split(prepare, workers, len(events), progress)
    report = merged(shares)
    report.update(
        {
            "log": str(path),
            "format": fmt,
            "scorer": scorer.name if scorer is not None else "markov",
            "alpha": settings.adjust_alpha,
            "adjust_model": settings.adjust_model,
            "seconds": seconds,
            "events_per_s": len(events) / seconds if seconds else 0.0,
            "protocol": "prequential: each event vs the list last published to its user; "
            "a user's first event and refreshes (same item as the previous event) skipped",
        }
    )
    if workers > 1:
        report["workers"] = [
            {"events": s.events, "events_per_s": s.events / s.seconds if s.seconds else 0.0}
            for s in shares
        ]
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="streamrec replay-eval", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=Path, required=True, help="event log to replay")
    ap.add_argument("--format", choices=FORMATS, help="default: guessed from the path")
    ap.add_argument("--scorer", choices=["markov", "neural"], default="markov")
    ap.add_argument("--model", type=Path, help="checkpoint directory for --scorer neural")
    ap.add_argument(
        "--alpha", type=float, help="weight of the adjuster in the blend (STREAMREC_ADJUST_ALPHA)"
    )
    ap.add_argument(
        "--adjuster", choices=["slots", "logreg"], help="the adjuster (STREAMREC_ADJUST_MODEL)"
    )
    ap.add_argument("--limit", type=int, help="replay only the first N events (by time)")
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="replay as this many workers, each with its share of the input partitions "
        "and its own models, in parallel processes (default 1: in this process)",
    )
    ap.add_argument("--json", type=Path, required=True, help="write the report here")
    args = ap.parse_args(argv)
    scorer: Scorer | None = None
    if args.scorer == "neural":
        if args.model is None:
            ap.error("--scorer neural needs --model DIR")
        if args.workers != 1:
            # Forking after torch has started its thread pools can hang the workers.
            ap.error("--workers applies to the Markov scorer; the neural scorer replays in one")
        from models.serving.scorer import NeuralScorer

        scorer = NeuralScorer.load(args.model, device="cpu")
    report = run(
        args.events,
        args.format,
        scorer,
        args.alpha,
        args.limit,
        model=args.adjuster,
        workers=args.workers,
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    k = "NDCG@10"
    print(
        f"base {report['base'][k]:.4f}  adjusted {report['adjusted'][k]:.4f}  "
        f"best fixed ({report['best_fixed']}) {report['fixed'][report['best_fixed']][k]:.4f}  "
        f"popularity {report['popularity'][k]:.4f}   ({report['events_per_s']:.0f} events/s)",
        file=sys.stderr,
    )
    print(f"-> {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
