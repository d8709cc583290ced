"""End to end on the real broker: an outside aiokafka client produces, the worker
(a real process) recommends, the test reads the output and DLQ topics."""

from __future__ import annotations

import json
import math
import shutil
import time

import msgpack
import pytest

from stream_app import dlq
from stream_app.harness import Stack
from tests.conftest import new_stack
from tests.integration.kafka_io import decoded, read_n, send_all

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def event(user: str, item: str, ts: int, eid: str, fmt: str = "msgpack", **extra: object) -> bytes:
    value = {
        "user_id": user,
        "item_id": item,
        "event_type": "purchase",
        "ts": ts,
        "event_id": eid,
        **extra,
    }
    return json.dumps(value).encode() if fmt == "json" else msgpack.packb(value)


def check_recommendation(rec: dict, top_k: int = 10) -> None:
    assert set(rec) - {"purchase_propensity"} == {
        "user_id",
        "items",
        "influences",
        "model",
        "source_event_id",
        "event_ts",
        "emitted_ts",
    }
    assert ("purchase_propensity" in rec) == ("adjuster" in rec["model"])
    assert 0.0 <= rec.get("purchase_propensity", 0.0) <= 1.0
    assert 0 < len(rec["items"]) <= top_k
    scores = [i["score"] for i in rec["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(math.isfinite(s) for s in scores)
    weights = [x["weight"] for x in rec["influences"]]
    assert weights and abs(sum(weights) - 1.0) < 1e-6
    assert all(w >= 0 for w in weights)
    assert rec["model"]["name"] == "markov"
    assert rec["emitted_ts"] >= rec["event_ts"] - 1000


async def test_every_valid_event_recommended_and_bad_input_dead_lettered(stack: Stack) -> None:
    s = stack.settings
    worker = stack.worker().start()
    now = int(time.time() * 1000)
    good: list[tuple[bytes | None, bytes]] = []
    ids = []
    for n in range(300):
        user, item = f"user{n % 40}", f"item{(n * 7) % 50}"
        eid = f"ev-{n}"
        ids.append(eid)
        fmt = "json" if n % 3 == 0 else "msgpack"
        # Every 10th event is unkeyed: it must still reach the user's partition.
        key = None if n % 10 == 0 else user.encode()
        good.append((key, event(user, item, now + n, eid, fmt)))

    huge = json.dumps(
        {
            "user_id": "u",
            "item_id": "i",
            "event_type": "click",
            "ts": now,
            "pad": "x" * (2 * 1024 * 1024),
        }
    ).encode()
    bad = {
        "undecodable": b"\xc1\xc1 not msgpack",
        "missing_field": msgpack.packb({"user_id": "u1", "event_type": "click", "ts": now}),
        "wrong_type": json.dumps(
            {"user_id": "u1", "item_id": "i1", "event_type": "click", "ts": "yesterday"}
        ).encode(),
        "unknown_event_type": msgpack.packb(
            {"user_id": "u1", "item_id": "i1", "event_type": "like", "ts": now}
        ),
        "too_large": huge,
        "invalid_ts": msgpack.packb(
            {"user_id": "u1", "item_id": "i1", "event_type": "view", "ts": -5}
        ),
        "not_a_map": msgpack.packb([1, 2, 3]),
    }
    messages = list(good)
    for i, raw in enumerate(bad.values()):
        messages.insert(40 * (i + 1), (b"u1", raw))  # bad input between good events
    await send_all(s.bootstrap, s.input_topic, messages)

    recs = decoded(await read_n(s.bootstrap, s.output_topic, len(good), timeout=90, settle=2))
    assert sorted(r["source_event_id"] for r in recs) == sorted(ids)  # each exactly once
    for rec in recs:
        check_recommendation(rec)

    dead = await read_n(s.bootstrap, s.dlq_topic, len(bad), timeout=30, settle=1)
    by_reason = {dict(r.headers)[dlq.REASON].decode(): r for r in dead}
    assert sorted(by_reason) == sorted(bad)
    for reason, raw in bad.items():
        record = by_reason[reason]
        assert record.value == raw, reason
        headers = dlq.headers_dict(list(record.headers))
        assert headers[dlq.SOURCE_TOPIC] == s.input_topic
        assert int(headers[dlq.SOURCE_OFFSET]) >= 0
        assert headers[dlq.DETAIL], reason
    assert worker.proc is not None and worker.proc.poll() is None, worker.log()[-3000:]


async def _restart_keeps_state(stack: Stack, wipe_local_state: bool) -> None:
    s = stack.settings
    worker = stack.worker().start()
    now = int(time.time() * 1000)
    before = [f"early{i}" for i in range(5)]
    await send_all(
        s.bootstrap,
        s.input_topic,
        [(b"alice", event("alice", item, now + i, f"a{i}")) for i, item in enumerate(before)],
    )
    await read_n(s.bootstrap, s.output_topic, len(before), timeout=90)
    assert worker.stop() == 0, worker.log()[-3000:]
    if wipe_local_state:
        shutil.rmtree(worker.env["STREAMREC_DATA_DIR"])  # forces a changelog restore

    stack.worker().start()
    await send_all(s.bootstrap, s.input_topic, [(b"alice", event("alice", "late", now + 99, "a9"))])
    recs = decoded(await read_n(s.bootstrap, s.output_topic, len(before) + 1, timeout=90))
    last = next(r for r in recs if r["source_event_id"] == "a9")
    assert [x["item_id"] for x in last["influences"]] == [*before, "late"]


async def test_state_survives_restart(stack: Stack) -> None:
    await _restart_keeps_state(stack, wipe_local_state=False)


async def test_state_restored_from_changelog(stack: Stack) -> None:
    await _restart_keeps_state(stack, wipe_local_state=True)


async def test_memory_store_restores_state_from_the_changelog(bootstrap: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = new_stack(bootstrap, tmp_path, store="memory")
    try:
        await _restart_keeps_state(stack, wipe_local_state=False)
    finally:
        stack.stop()


def test_cli_produce_and_consume_round_trip(stack: Stack) -> None:
    """The documented commands, as a user runs them: replay a dataset, read JSON lines."""
    import subprocess
    import sys

    worker = stack.worker().start()
    env = {**worker.env}
    dataset = stack.workdir / "seq.txt"
    dataset.write_text(
        "".join(f"{u} " + " ".join(f"{u * 3 + i}" for i in range(4)) + "\n" for u in range(25))
    )
    run = [sys.executable, "-m", "stream_app"]
    produced = subprocess.run(
        [
            *run,
            "produce",
            "--dataset",
            str(dataset),
            "--rate",
            "500",
            "--limit",
            "80",
            "--format",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert produced.returncode == 0, produced.stderr[-2000:]
    consumed = subprocess.run(
        [*run, "consume", "--from-beginning", "--limit", "80", "--idle-timeout", "60"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert consumed.returncode == 0, consumed.stderr[-2000:]
    recs = [json.loads(line) for line in consumed.stdout.splitlines()]
    assert len(recs) == 80
    assert len({r["source_event_id"] for r in recs}) == 80
    for rec in recs:
        check_recommendation(rec)
    users = {r["user_id"] for r in recs}
    assert users <= {str(u) for u in range(25)} and len(users) > 5
