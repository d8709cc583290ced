"""One live run of ``scripts.bench_trainer_live``: broker, worker, trainer or none, the replay.

The log (:class:`Log`) names each event ``e<n>`` by its place in time order and
knows every event's successor of the same user, so a recommendation read from
the output topic (its ``source_event_id``) is scored against what the user did
next. The first model and the trainer's window snapshot come from
:func:`warm_up`; a run starts from copies of both, so both modes start equal.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from models.datasets import Event, read_events
from models.nn.vocab import FIRST
from models.serving import checkpoint
from stream_app.events import event_value
from stream_app.harness import Stack, free_port, isolated_env, local_broker_settings, settings_env
from stream_app.processes import WorkerProcess
from stream_app.routing import partition_for
from stream_app.serializers import decode_value
from stream_app.settings import Settings
from stream_app.trainer.service import Trainer

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 4
K = 10


@dataclass
class Log:
    events: list[Event]
    n_warm: int  # events[:n_warm] train the first model and are not scored
    start: int  # ts of the first event
    next_of: dict[int, int] = field(default_factory=dict)  # event -> the user's next event

    def __post_init__(self) -> None:
        last: dict[str, int] = {}
        for n, e in enumerate(self.events):
            if e[0] in last:
                self.next_of[last[e[0]]] = n
            last[e[0]] = n


def synthetic(users: int = 40, steps: int = 15, items: int = 30) -> list[Event]:
    """Users walking one cycle of items, one event a second: a log any model learns."""
    out = []
    for step in range(steps):
        for u in range(users):
            ts = 1_600_000_000_000 + (step * users + u) * 1000
            out.append((f"u{u}", f"i{(u + step) % items}", "view", ts, None))
    return out


def load_log(args: argparse.Namespace) -> Log:
    events = synthetic() if args.smoke else list(read_events(Path(args.dataset)))
    if args.limit:
        events = events[: args.limit]
    start = events[0][3]
    warm_end = start + int(args.warmup_min * 60_000)
    n_warm = next((n for n, e in enumerate(events) if e[3] >= warm_end), len(events))
    return Log(events, n_warm, start)


def message(n: int, e: Event) -> tuple[bytes, bytes]:
    user, item, kind, ts, category = e
    value = event_value(user, item, kind, ts, event_id=f"e{n}", category=category)
    return user.encode(), msgpack.packb(value)


def warm_up(args: argparse.Namespace, log: Log, workdir: Path) -> tuple[Path, Path]:
    """Train the first model on the warm-up events; return its directory and the window snapshot."""
    settings = Settings(
        model_dir=workdir / "current",
        trainer_dir=workdir / "trainer",
        device="cpu",
        partitions=PARTITIONS,
        trainer_min_events=2,
        trainer_holdout_events=args.holdout,
        trainer_epochs=args.warmup_epochs,
        trainer_dim=args.dim,
        trainer_window_events=args.window_events,
        trainer_transition_weight=args.transition_weight,
    )
    trainer = Trainer(settings)
    for n, e in enumerate(log.events[: log.n_warm]):
        key, value = message(n, e)
        trainer.intake.take(value, partition_for(key, PARTITIONS), [])

    async def one_round() -> None:
        trainer.start_round()
        await trainer.wait_round()

    asyncio.run(one_round())
    if trainer.current is None:
        raise SystemExit("the first model did not pass the gate against popularity")
    trainer.snapshot()
    assert settings.model_dir is not None
    return settings.model_dir.resolve(), trainer.snapshot_path


def trainer_fields(args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    return {
        "trainer_dir": workdir / "trainer",
        "trainer_interval_s": args.interval_s,
        "trainer_min_events": 2,
        "trainer_holdout_events": args.holdout,
        "trainer_epochs": args.epochs,
        "trainer_dim": args.dim,
        "trainer_window_events": args.window_events,
        "trainer_transition_weight": args.transition_weight,
        "trainer_snapshot_s": 10,
        "trainer_keep": 3,
        "trainer_metrics_port": free_port(),
        "device": "cpu",
    }


ROUND = re.compile(r"(promoted|rejected) (\S+): holdout NDCG@10 ([\d.]+) vs (\w+) ([\d.]+)(.*)")
SECONDS = re.compile(r"([\d.]+) s$")


def rounds_from_log(text: str) -> list[dict[str, Any]]:
    """The trainer's promotions and rejections, from its log lines."""
    out = []
    for line in text.splitlines():
        m = ROUND.search(line)
        if m is None:
            continue
        s = SECONDS.search(m[6])
        out.append(
            {
                "at": line[:23],
                "result": m[1],
                "version": m[2],
                "candidate_ndcg10": float(m[3]),
                "reference": m[4],
                "reference_ndcg10": float(m[5]),
                "seconds": float(s[1]) if s else None,
            }
        )
    return out


class LiveRun:
    """One mode ("on": a trainer beside the worker; "frozen": none) on its own broker."""

    def __init__(
        self, args: argparse.Namespace, log: Log, workdir: Path, mode: str, base: Settings | None
    ) -> None:
        self.args, self.log, self.workdir, self.mode = args, log, workdir, mode
        self.base = base or local_broker_settings(kafka_bootstrap=Settings().kafka_bootstrap)
        self.recs: dict[str, dict[str, Any]] = {}  # source event id -> what was served
        self.load: list[tuple[float, tuple[float, float, float]]] = []
        self.sent: dict[int, float] = {}  # event -> when it was produced (run seconds)
        self.t0 = 0.0

    def go(self, frozen_dir: Path, snapshot: Path) -> dict[str, Any]:
        wd = self.workdir
        shutil.copytree(frozen_dir, wd / "current")
        (wd / "trainer").mkdir(parents=True)
        shutil.copy(snapshot, wd / "trainer" / snapshot.name)
        fields: dict[str, object] = {
            "partitions": PARTITIONS,
            "log_level": "info",
            "adjust": False,
            "model_dir": wd / "current",
            "model_reload_s": 2,
        }
        env = isolated_env(f"live-{self.mode}", **fields)
        frozen_vocab = checkpoint.load(frozen_dir).vocab
        with Stack(env, wd, cwd=ROOT) as stack:
            stack.use_broker(self.base, data_dir=wd / "broker")
            stack.create_topics()
            stack.worker("w").start().wait_ready(300)
            trainer = self._start_trainer(stack) if self.mode == "on" else None
            self.t0 = time.monotonic()
            asyncio.run(self._replay(stack.settings))
            wall = time.monotonic() - self.t0
            trainer_log = trainer.log_path.read_text() if trainer else ""
        scored = self._score(frozen_vocab)
        return {
            "wall_seconds": wall,
            "recommendations": len(self.recs),
            "scored": scored,
            "rounds": rounds_from_log(trainer_log),
            "load_average": self.load,
        }

    def _start_trainer(self, stack: Stack) -> WorkerProcess:
        own = settings_env(**trainer_fields(self.args, self.workdir))
        proc = WorkerProcess(
            {**os.environ, **stack.env_vars, **own},
            self.workdir / "trainer.log",
            argv=[sys.executable, "-m", "stream_app", "trainer"],
        )
        stack.workers.append(proc)
        return proc.start()

    async def _replay(self, s: Settings) -> None:
        reader = asyncio.create_task(self._read(s))
        producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap, linger_ms=5)
        await producer.start()
        try:
            await self._produce(producer, s.input_topic)
        finally:
            await producer.stop()
        expected = len(self.log.events)
        quiet_since, seen = time.monotonic(), -1
        while len(self.recs) < expected and time.monotonic() - quiet_since < 30:
            await asyncio.sleep(1)
            if len(self.recs) != seen:
                quiet_since, seen = time.monotonic(), len(self.recs)
        reader.cancel()

    async def _produce(self, producer: AIOKafkaProducer, topic: str) -> None:
        """Warm-up events unpaced, then the rest in time order: ``speedup``, ``max_rate``."""
        log, a = self.log, self.args
        for n, e in enumerate(log.events[: log.n_warm]):
            key, value = message(n, e)
            await producer.send(topic, value, key=key, partition=partition_for(key, PARTITIONS))
        await producer.flush()
        start_wall, start_ts = time.monotonic(), log.events[log.n_warm][3]
        gap, next_at, last_load = 1.0 / a.max_rate, start_wall, 0.0
        for n in range(log.n_warm, len(log.events)):
            e = log.events[n]
            due = max(start_wall + (e[3] - start_ts) / 1000 / a.speedup, next_at)
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            next_at = due + gap
            key, value = message(n, e)
            await producer.send(topic, value, key=key, partition=partition_for(key, PARTITIONS))
            self.sent[n] = time.monotonic() - self.t0
            if time.monotonic() - last_load >= 10:
                last_load = time.monotonic()
                self.load.append((last_load - self.t0, os.getloadavg()))
        await producer.flush()

    async def _read(self, s: Settings) -> None:
        consumer = AIOKafkaConsumer(
            s.output_topic, bootstrap_servers=s.bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                now = time.monotonic() - self.t0
                for records in batch.values():
                    for r in records:
                        rec = decode_value(r.value)
                        source = str(rec.get("source_event_id"))
                        self.recs.setdefault(
                            source,
                            {
                                "items": [i["item_id"] for i in rec["items"]],
                                "version": rec["model"].get("version"),
                                "wall": now,
                            },
                        )
        finally:
            await consumer.stop()

    def _score(self, frozen_vocab: Any) -> list[dict[str, Any]]:
        """One row per served list whose user acted again after the warm-up."""
        rows = []
        for source, rec in self.recs.items():
            if not source.startswith("e"):
                continue
            n = int(source[1:])
            m = self.log.next_of.get(n)
            if m is None or m < self.log.n_warm:
                continue
            target = self.log.events[m]
            top = rec["items"][:K]
            rank = top.index(target[1]) if target[1] in top else None
            rows.append(
                {
                    "ts": target[3],
                    "ndcg10": 0.0 if rank is None else 1.0 / math.log2(rank + 2),
                    "target_new": frozen_vocab.index(target[1]) < FIRST,
                    "names_new": any(frozen_vocab.index(i) < FIRST for i in top),
                    "version": rec["version"],
                    "wall": rec["wall"],
                    "lag_s": rec["wall"] - self.sent[n] if n in self.sent else None,
                }
            )
        return rows
