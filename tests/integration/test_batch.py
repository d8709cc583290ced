"""The Markov worker's batch path (:mod:`stream_app.batch_loop`) against the one-at-a-time one.

* Equivalence: one log (users seen many times in one batch, an idle-user sweep
  and an erasure in the middle, a few invalid events) through both paths gives
  the same recommendations and the same final tables.
* A worker dies (``os._exit``, as ``kill -9``) in the middle of a batch, twice,
  each time restarted with its local state wiped: every event is recommended,
  and neither the users' state nor the Markov counts hold any event twice.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack
import pytest
from aiokafka import AIOKafkaProducer

from stream_app.app import internal_topic_specs
from stream_app.control import forget_headers, sweep_headers
from stream_app.erasure import ForgetRequest
from stream_app.harness import Stack
from stream_app.kafka.admin import ensure_topics
from stream_app.state.markov_store import decode_row
from stream_app.state.user_state import UserState
from stream_app.topology import TABLES
from tests.conftest import new_stack, wait_for
from tests.integration.kafka_io import decoded, read_all, read_n, send_all
from tests.integration.test_neural_serving import train_tiny
from tests.integration.test_pipeline import event

pytestmark = [pytest.mark.broker, pytest.mark.slow]

Message = tuple[bytes | None, bytes, list[tuple[str, bytes]]]
TYPES = ("view", "click", "add_to_cart", "purchase")


async def send_log(bootstrap: str, topic: str, messages: list[Message]) -> None:
    """Send in order, headers included, and wait for every acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futs = [await producer.send(topic, v, key=k, headers=h) for k, v, h in messages]
        for f in futs:
            await f
    finally:
        await producer.stop()


def equivalence_log(now: int, item: str = "i") -> tuple[list[Message], int]:
    """The log, and how many of its events must be recommended (``item``: the item
    ids' prefix)."""
    out: list[Message] = []
    old = now - 3 * 3600 * 1000  # idle for longer than the test's TTL: swept
    for n in range(40):
        u = f"old{n % 8}"
        out.append((u.encode(), event(u, f"{item}{n % 13 + 1}", old + n, f"o{n}"), []))
    for n in range(1500):
        u = f"u{n % 12}"
        kind = TYPES[n % 4]
        out.append(
            (
                u.encode(),
                event(u, f"{item}{(n * 7) % 23 + 1}", now - 5000 + n, f"e{n}", event_type=kind),
                [],
            )
        )
        if n == 700:
            out.append((None, b"", sweep_headers()))
        if n == 900:
            req = ForgetRequest("u3", "r1", now).encode()
            out.append((b"u3", req, forget_headers()))
        if n % 250 == 3:
            out.append((u.encode(), b"{not json", []))
    return out, 40 + 1500


async def final_tables(s: Any) -> dict[str, dict[bytes, bytes]]:
    """Each table as its changelog leaves it: the last value per key, tombstones applied."""
    out: dict[str, dict[bytes, bytes]] = {}
    for t in TABLES:
        view: dict[bytes, bytes] = {}
        for r in await read_all(s.bootstrap, f"{s.app_id}-{t}-changelog", s.partitions):
            if r.value is None:
                view.pop(r.key, None)
            else:
                view[r.key] = r.value
        out[t] = view
    return out


async def run_log(
    bootstrap: str, tmp: Path, batch_max: int, log: list[Message], n: int, **fields: Any
) -> Any:
    tmp.mkdir()
    fields = {"adjust": True, **fields}
    stack = new_stack(
        bootstrap,
        tmp,
        partitions=1,
        stream_batch_max=batch_max,
        user_ttl_s=3600,
        sweep_interval_s=3600,
        **fields,
    )
    s = stack.settings
    try:
        await ensure_topics(s, internal_topic_specs(s))
        await send_log(s.bootstrap, s.input_topic, log)  # before the worker: full batches
        worker = stack.worker(0).start()
        recs = decoded(await read_n(s.bootstrap, s.output_topic, n, timeout=120, settle=1.0))
        audit = await read_n(s.bootstrap, s.audit_topic, 1, timeout=30)
        dlq = await read_n(s.bootstrap, s.dlq_topic, 6, timeout=30, settle=0.5)
        worker.stop()
        batched = "input in batches" in worker.log()
        assert batched == (batch_max > 1), worker.log_tail(30)
        entries = [
            {k: v for k, v in json.loads(a.value).items() if k != "erased_ts"} for a in audit
        ]
        return recs, entries, len(dlq), await final_tables(s)
    finally:
        stack.stop()


def comparable(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k != "emitted_ts"}


async def test_batches_give_the_same_recommendations_and_state(
    bootstrap: str, tmp_path: Path
) -> None:
    log, n = equivalence_log(int(time.time() * 1000))
    one = await run_log(bootstrap, tmp_path / "one", 1, log, n)
    many = await run_log(bootstrap, tmp_path / "many", 1000, log, n)
    recs_one, recs_many = ([comparable(r) for r in x[0]] for x in (one, many))
    assert len(recs_one) == n and len(recs_many) == n
    for a, b in zip(recs_one, recs_many, strict=True):
        assert a == b, (a, b)
    assert one[1:3] == many[1:3]  # the audit entry, the dead letters
    tables_one, tables_many = one[3], many[3]
    assert not any(k.startswith(b"old") for k in tables_many["users"]), "sweep missed"
    assert len(one[1]) == 1, "no erasure audit entry"
    for t in TABLES:
        assert tables_one[t] == tables_many[t], t


def same_answer(a: dict, b: dict) -> bool:
    """The same items and influences; scores equal up to float rounding (a batch of
    another size may sum in another order)."""
    if comparable({**a, "items": 0, "influences": 0}) != comparable(
        {**b, "items": 0, "influences": 0}
    ):
        return False
    pairs = (
        [(x["item_id"], x["score"]) for x in a["items"]],
        [(x["item_id"], x["score"]) for x in b["items"]],
    )
    weights = [x["weight"] for x in a["influences"]], [x["weight"] for x in b["influences"]]
    return (
        [i for i, _ in pairs[0]] == [i for i, _ in pairs[1]]
        and all(abs(x - y) < 1e-4 for (_, x), (_, y) in zip(*pairs, strict=True))
        and len(weights[0]) == len(weights[1])
        and all(abs(x - y) < 1e-4 for x, y in zip(*weights, strict=True))
    )


async def test_a_served_model_answers_the_same_in_batches(bootstrap: str, tmp_path: Path) -> None:
    """A served Transformer: each batch's requests go to the micro-batcher together,
    and every event gets the answer the one-at-a-time (outbox) path gives it."""
    model = str(train_tiny(tmp_path))
    log, n = equivalence_log(int(time.time() * 1000), item="")
    served = {"model_dir": model, "adjust": False}
    one = await run_log(bootstrap, tmp_path / "one", 1, log, n, **served)
    many = await run_log(bootstrap, tmp_path / "many", 1000, log, n, **served)
    assert len(one[0]) == n and len(many[0]) == n
    assert all(r["model"]["name"] != "markov" for r in many[0])
    for a, b in zip(one[0], many[0], strict=True):
        assert same_answer(a, b), (a, b)
    assert one[1:3] == many[1:3]
    assert one[3] == many[3]


# -- kill -9 in the middle of a batch -----------------------------------------------
USERS, ITEMS, EVENTS = 60, 25, 12_000


def crash_log(now: int) -> list[tuple[bytes, bytes]]:
    out = []
    for n in range(EVENTS):
        u = f"c{n % USERS}"
        out.append(
            (u.encode(), event(u, f"it{(n * 11 + n // USERS) % ITEMS}", now - EVENTS + n, f"k{n}"))
        )
    return out


def expected_counts(log: list[tuple[bytes, bytes]]) -> tuple[Counter, Counter]:
    """Each item's count, each transition's count, with every event applied once."""
    items: Counter = Counter()
    pairs: Counter = Counter()
    last: dict[str, str] = {}
    for _, raw in log:
        e = msgpack.unpackb(raw)
        items[e["item_id"]] += 1
        if e["user_id"] in last:
            pairs[(last[e["user_id"]], e["item_id"])] += 1
        last[e["user_id"]] = e["item_id"]
    return items, pairs


def crashing_worker(stack: Stack, name: str, at: int, phase: str) -> Any:
    """A worker running crash_mid_batch.py (fresh data dir, like a wiped host)."""
    stack.argv = [sys.executable, str(Path(__file__).with_name("crash_mid_batch.py"))]
    try:
        w = stack.worker(name)
    finally:
        stack.argv = None
    w.env.update(CRASH_AT_BATCH=str(at), CRASH_PHASE=phase)
    return w


async def read_until_all(s: Any, ids: set[str], timeout: float) -> list[dict]:
    """The output topic once it holds a recommendation for each of ``ids`` (or time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        recs = decoded(await read_n(s.bootstrap, s.output_topic, len(ids), timeout=30, settle=1))
        if ids <= {r["source_event_id"] for r in recs} or time.monotonic() > deadline:
            return recs


@pytest.mark.parametrize("overlap", ["auto", "on"])  # on: the next batch processed meanwhile
async def test_kill_mid_batch_loses_nothing_and_applies_nothing_twice(
    bootstrap: str, tmp_path: Path, overlap: str
) -> None:
    stack = new_stack(
        bootstrap, tmp_path, stream_batch_max=2000, history_len=500, stream_overlap=overlap
    )
    s = stack.settings
    log = crash_log(int(time.time() * 1000))
    try:
        await ensure_topics(s, internal_topic_specs(s))
        await send_all(s.bootstrap, s.input_topic, log)
        for name, at, phase in (("a", 3, "counts"), ("b", 2, "sent")):
            w = crashing_worker(stack, name, at, phase).start()
            wait_for(lambda w=w: not w.running, timeout=180)
            assert "crash_mid_batch: dying" in w.log(), w.log_tail(30)
        worker = stack.worker("c").start()  # a new data dir: state from the changelogs
        want = {f"k{n}" for n in range(EVENTS)}
        recs = await read_until_all(s, want, timeout=240)
        missing = want - {r["source_event_id"] for r in recs}
        assert not missing, f"{len(missing)} events never recommended{worker.log_tail(30)}"
        worker.stop()
        tables = await final_tables(s)
    finally:
        stack.stop()
    items, pairs = expected_counts(log)
    got_items: Counter = Counter()
    got_pairs: Counter = Counter()
    for key, raw in tables["items"].items():
        item = key.decode().partition(":")[2]
        row = decode_row(raw)
        got_items[item] += row.count
        for nxt, c in row.successors.items():
            got_pairs[(item, nxt)] += c
    assert got_items == items, "Markov item counts differ from one count per event"
    assert got_pairs == pairs, "Markov transition counts differ from one count per event"
    by_user: dict[str, list[str]] = {}
    for _, raw in log:
        e = msgpack.unpackb(raw)
        by_user.setdefault(e["user_id"], []).append(e["event_id"])
    for user, eids in by_user.items():
        state = UserState.decode(tables["users"][user.encode()])
        assert [r.event_id for r in state.records] == eids, user
