"""50k events with 10% hostile ones mixed in: the worker stays up, every hostile
message lands in the DLQ, every valid event gets its recommendation."""

from __future__ import annotations

import json
import random
import time

import msgpack
import pytest

from stream_app import dlq
from stream_app.harness import Stack
from tests.integration.kafka_io import read_n, send_all

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TOTAL = 50_000


def hostile(rng: random.Random, now: int) -> tuple[bytes, str]:
    """A hostile value and the DLQ reason it must get."""
    base = {"user_id": f"u{rng.randrange(500)}", "item_id": "i", "event_type": "click", "ts": now}
    kind = rng.randrange(8)
    if kind == 0:
        return bytes(
            rng.randrange(256) for _ in range(rng.randrange(1, 64))
        ) + b"\xc1", "undecodable"
    if kind == 1:
        return msgpack.packb(base)[: rng.randrange(1, 10)], "undecodable"
    if kind == 2:
        return json.dumps({**base, "ts": "soon"}).encode(), "wrong_type"
    if kind == 3:
        return msgpack.packb({**base, "event_type": "teleport"}), "unknown_event_type"
    if kind == 4:
        return msgpack.packb({k: v for k, v in base.items() if k != "item_id"}), "missing_field"
    if kind == 5:
        return b'{"a":' * 3000 + b"1" + b"}" * 3000, "undecodable"
    if kind == 6:
        return json.dumps({**base, "pad": "x" * 70_000}).encode(), "too_large"
    return msgpack.packb({**base, "ts": -rng.randrange(1, 10**9)}), "invalid_ts"


async def test_hostile_mix_end_to_end(stack: Stack) -> None:
    s = stack.settings
    worker = stack.worker().start()
    rng = random.Random(7)
    now = int(time.time() * 1000)
    messages: list[tuple[bytes | None, bytes]] = []
    expected_reasons: dict[int, str] = {}
    valid_ids = set()
    for n in range(TOTAL):
        if rng.random() < 0.1:
            raw, reason = hostile(rng, now)
            expected_reasons[n] = reason
            messages.append((f"u{n % 500}".encode(), raw))
        else:
            user = f"u{rng.randrange(2000)}"
            body = {
                "user_id": user,
                "item_id": f"i{rng.randrange(3000)}",
                "event_type": rng.choice(["view", "click", "add_to_cart", "purchase"]),
                "ts": now + n,
                "event_id": f"v{n}",
            }
            messages.append((user.encode(), msgpack.packb(body)))
            valid_ids.add(f"v{n}")
    await send_all(s.bootstrap, s.input_topic, messages)

    recs = await read_n(s.bootstrap, s.output_topic, len(valid_ids), timeout=600, settle=2)
    got = [msgpack.unpackb(r.value)["source_event_id"] for r in recs]
    assert set(got) == valid_ids and len(got) == len(valid_ids)

    dead = await read_n(s.bootstrap, s.dlq_topic, len(expected_reasons), timeout=120, settle=1)
    assert len(dead) == len(expected_reasons)
    reasons: dict[str, int] = {}
    for r in dead:
        reason = dlq.headers_dict(list(r.headers))[dlq.REASON]
        reasons[reason] = reasons.get(reason, 0) + 1
    want: dict[str, int] = {}
    for reason in expected_reasons.values():
        want[reason] = want.get(reason, 0) + 1
    assert reasons == want
    assert worker.proc is not None and worker.proc.poll() is None, worker.log()[-3000:]
