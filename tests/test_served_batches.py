"""A served model's batch path without a broker: a control marker waits until every
event before it is rendered."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import msgpack

from models.base import Scored
from models.markov import DictTransitionStore, MarkovScorer
from stream_app.adjustment import OnlineAdjustment
from stream_app.agents import Agents
from stream_app.control import forget_headers
from stream_app.erasure import ForgetRequest
from stream_app.processor import Answer, Processor, ScoreRequest
from stream_app.routing import partition_for
from stream_app.serializers import decode_value
from stream_app.settings import Settings

NOW = int(time.time() * 1000)


class FakeEvent:
    """What the batch path reads of a Faust event (weak-referenceable, as an Event is)."""

    def __init__(self, value: bytes, key: bytes, offset: int, headers: list[Any]) -> None:
        self.value = value
        self.message = SimpleNamespace(
            topic="streamrec.events",
            partition=partition_for(key, 4),
            offset=offset,
            key=key,
            headers=headers,
        )


class Model:
    """A fixed model, as the micro-batcher serves it."""

    async def score_all(self, requests: list[ScoreRequest]) -> list[Answer]:
        await asyncio.sleep(0)
        return [frozen(r) for r in requests]

    async def dispatched(self) -> None:
        await asyncio.sleep(0)


def frozen(request: ScoreRequest) -> Answer:
    """A fixed model's answer: it reads the request only, as a served checkpoint does."""
    last = int(request.history[-1].item_id[1:])
    items = [(f"i{(last + d) % 11}", 1.0 / d) for d in range(1, 8)]
    n = len(request.history)
    return Answer(Scored(items=items, influences=[1.0 / n] * n), {"name": "fixed", "version": "1"})


def worker(batch_max_size: int) -> Agents:
    settings = Settings(partitions=4, adjust=True, batch_max_size=batch_max_size)
    scorer = MarkovScorer(DictTransitionStore())
    adjust = OnlineAdjustment(k=10, feedback_store={})
    processor = Processor(settings, {}, scorer, learner=scorer, adjust=adjust)
    return Agents(settings, SimpleNamespace(), processor, Model())  # type: ignore[arg-type]


def log(n: int) -> list[FakeEvent]:
    out = []
    for i in range(n):
        user = f"u{i % 7}"
        value = {"user_id": user, "item_id": f"i{(i * 5) % 11}", "event_type": "click"}
        value["ts"] = NOW - n + i
        out.append(FakeEvent(msgpack.packb(value), user.encode(), i, []))
    return out


def run(agents: Agents, events: list[FakeEvent]) -> list[Any]:
    model = agents.server
    assert model is not None
    return asyncio.run(agents.handle_served(model, events))  # type: ignore[arg-type]


def test_an_erasure_in_a_batch_waits_for_the_lists_before_it() -> None:
    events = log(20)
    erase = ForgetRequest.new("u3")
    marker = FakeEvent(erase.encode(), b"u3", 20, forget_headers())
    agents = worker(batch_max_size=8)
    out = run(agents, [*events, marker, *log(3)[:1]])
    adjust = agents.processor.adjust
    assert adjust is not None
    # u3's events before the marker got their recommendations, then u3 was erased:
    # no list published to u3 came after the erasure.
    recommended = [decode_value(m.value)["user_id"] for messages, ts in out if ts for m in messages]
    assert recommended.count("u3") == 3
    assert "u3" not in adjust._last and adjust.feedback.store is not None
    assert b"u3" not in adjust.feedback.store and b"u3" not in agents.processor.users
    assert "u0" in adjust._last  # the event after the marker was served as usual


def lists(out: list[Any]) -> list[dict[str, Any]]:
    """Each recommendation, without the wall-clock time it was emitted at."""
    recs = [decode_value(m.value) for messages, ts in out if ts for m in messages]
    return [{k: v for k, v in rec.items() if k != "emitted_ts"} for rec in recs]


def test_the_adjuster_working_while_the_model_scores_changes_no_list() -> None:
    """Observing a chunk's events once it went to the model, and taking each list's
    early part before the answers, publishes what observing at ingest and taking
    every part at render publishes (users repeat within and across chunks)."""
    events = log(60)
    served = run(worker(batch_max_size=8), events)
    ref = worker(batch_max_size=8)
    got = [ref.ingest(e) for e in events]  # the adjuster observes each at once
    expected = [
        (ref.processor.render([r], [frozen(r)]), r.event_ts)
        for _, r in got
        if isinstance(r, ScoreRequest)
    ]
    assert len(expected) == 60
    assert lists(served) == lists(expected)
