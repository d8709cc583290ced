"""The worker's logic without Kafka: dicts stand in for Faust tables."""

import time

import msgpack
import pytest

from models.markov import DictTransitionStore, MarkovScorer
from stream_app import dlq
from stream_app.outgoing import Outgoing
from stream_app.processor import Processor, ScoreRequest, Source
from stream_app.routing import REROUTED_HEADER, partition_for
from stream_app.serializers import decode_value
from stream_app.settings import Settings

NOW = int(time.time() * 1000)


def make(**kw: object) -> tuple[Processor, dict[bytes, bytes]]:
    settings = Settings(partitions=4, **kw)  # type: ignore[arg-type]
    users: dict[bytes, bytes] = {}
    scorer = MarkovScorer(DictTransitionStore())
    return Processor(settings, users, scorer, learner=scorer), users


def raw(user: str = "u1", item: str = "i1", ts: int = NOW, **kw: object) -> bytes:
    return msgpack.packb({"user_id": user, "item_id": item, "event_type": "click", "ts": ts, **kw})


def src(user: str, offset: int, partition: int | None = None) -> Source:
    p = partition_for(user.encode(), 4) if partition is None else partition
    return Source("streamrec.events", p, offset, user.encode())


def run(proc: Processor, value: bytes, source: Source) -> list[Outgoing]:
    result = proc.ingest(value, source)
    return result if isinstance(result, list) else proc.recommend([result])


def test_recommendation_carries_contract_fields() -> None:
    proc, _ = make()
    run(proc, raw(item="a"), src("u1", 0))
    [out] = run(proc, raw(item="b", event_id="e2"), src("u1", 1))
    rec = decode_value(out.value)
    assert out.topic == "streamrec.recommendations" and out.key == b"u1"
    assert rec["source_event_id"] == "e2" and rec["user_id"] == "u1"
    assert [x["item_id"] for x in rec["influences"]] == ["a", "b"]
    assert rec["model"] == {"name": "markov", "version": "online"}


def test_event_without_id_is_identified_by_its_coordinates() -> None:
    proc, _ = make()
    [out] = run(proc, raw(), src("u1", 17))
    p = partition_for(b"u1", 4)
    assert decode_value(out.value)["source_event_id"] == f"streamrec.events:{p}:17"


def test_event_on_the_wrong_partition_is_forwarded_to_its_owner() -> None:
    proc, users = make()
    owner = partition_for(b"u1", 4)
    value = raw()
    [fwd] = run(proc, value, Source("streamrec.events", (owner + 1) % 4, 5, None))
    assert fwd.topic == "streamrec.events" and fwd.key == b"u1" and fwd.value == value
    assert (
        dict(fwd.headers or [])[REROUTED_HEADER] == f"streamrec.events:{(owner + 1) % 4}:5".encode()
    )
    assert users == {}  # nothing applied before it reaches the owner
    # At the owner, it keeps the original coordinates as its identity.
    rerouted = Source("streamrec.events", owner, 9, b"u1", fwd.headers or [])
    [out] = run(proc, value, rerouted)
    assert decode_value(out.value)["source_event_id"] == f"streamrec.events:{(owner + 1) % 4}:5"


def test_replayed_offset_is_recommended_again_but_applied_once() -> None:
    proc, users = make()
    run(proc, raw(item="a"), src("u1", 0))
    before = dict(users)
    [out] = run(proc, raw(item="a"), src("u1", 0))  # redelivery after a crash
    assert users == before
    assert len(decode_value(out.value)["influences"]) == 1


@pytest.mark.parametrize(
    ("ts", "reason"), [(NOW - 2 * 3_600_000, "too_late"), (NOW + 2 * 86_400_000, "ts_in_future")]
)
def test_out_of_order_beyond_tolerance_is_dead_lettered(ts: int, reason: str) -> None:
    proc, _ = make()
    run(proc, raw(ts=NOW), src("u1", 0))
    value = raw(ts=ts)
    [dead] = run(proc, value, src("u1", 1))
    assert dead.topic == "streamrec.events.dlq" and dead.value == value
    assert dict(dead.headers or [])[dlq.REASON] == reason.encode()


def test_late_within_tolerance_is_inserted_in_time_order() -> None:
    proc, _ = make()
    run(proc, raw(item="new", ts=NOW), src("u1", 0))
    [out] = run(proc, raw(item="old", ts=NOW - 60_000), src("u1", 1))
    assert [x["item_id"] for x in decode_value(out.value)["influences"]] == ["old", "new"]


def test_pseudonymised_ids_never_reach_state_or_output() -> None:
    proc, users = make(pseudonym_secret="s3cret")
    [out] = run(proc, raw(user="alice@example.com"), src("alice@example.com", 0))
    assert b"alice" not in out.value and out.key is not None and b"alice" not in out.key
    assert all(b"alice" not in k for k in users)
    assert proc.pseudonymize is not None
    assert decode_value(out.value)["user_id"] == proc.pseudonymize("alice@example.com")


def test_huge_payload_is_truncated_only_beyond_the_dlq_limit() -> None:
    proc, _ = make(max_event_bytes=1000, dlq_max_bytes=5000)
    value = raw(pad="x" * 8000)
    [dead] = run(proc, value, src("u1", 0))
    headers = dict(dead.headers or [])
    assert headers[dlq.REASON] == b"too_large"
    assert dead.value == value[:5000] and headers[dlq.TRUNCATED] == str(len(value)).encode()


def test_a_processing_bug_dead_letters_the_event() -> None:
    proc, _ = make()
    dead = proc.failed(b"xyz", src("u1", 3), RuntimeError("boom"))
    headers = dlq.headers_dict(dead.headers)
    assert headers[dlq.REASON] == "processing_error" and "boom" in headers[dlq.DETAIL]
    assert dead.value == b"xyz"


def test_batch_scoring_keeps_request_order() -> None:
    proc, _ = make()
    reqs = [proc.ingest(raw(user=f"u{i}", item="a"), src(f"u{i}", i)) for i in range(5)]
    assert all(isinstance(r, ScoreRequest) for r in reqs)
    outs = proc.recommend(reqs)  # type: ignore[arg-type]
    assert [o.key for o in outs] == [f"u{i}".encode() for i in range(5)]


def test_a_sweep_marker_forgets_only_idle_users_of_its_partition() -> None:
    from stream_app.control import sweep_headers

    proc, users = make(user_ttl_s=3600, max_lateness_ms=10**12)
    users_by_partition: dict[int, list[str]] = {}
    for n in range(40):
        u = f"user{n}"
        users_by_partition.setdefault(partition_for(u.encode(), 4), []).append(u)
        old = n % 2 == 0  # every other user was last seen two hours ago
        run(proc, raw(u, ts=NOW - 7_200_000 if old else NOW), src(u, 0))
    p = 1
    marker = Source("streamrec.events", p, 99, None, sweep_headers())
    assert proc.ingest(b"", marker) == []  # not an event: nothing to publish
    for part, members in users_by_partition.items():
        for u in members:
            idle = int(u.removeprefix("user")) % 2 == 0
            gone = part == p and idle
            assert (u.encode() in users) is not gone, (u, part)


def test_a_forget_marker_erases_the_user_and_audits_with_the_pseudonym_only() -> None:
    from stream_app.adjustment import OnlineAdjustment
    from stream_app.control import forget_headers
    from stream_app.erasure import ForgetRequest

    proc, users = make(pseudonym_secret="k")
    proc.adjust = OnlineAdjustment(10)
    for n, item in enumerate("abc"):
        run(proc, raw("alice", item), src("alice", n))
    run(proc, raw("bob", "a"), src("bob", 0))
    pseudo = proc.pseudonymize("alice")  # type: ignore[misc]
    assert pseudo.encode() in users and pseudo in proc.adjust._last

    request = ForgetRequest.new("alice")
    marker = Source("streamrec.events", src("alice", 0).partition, 9, b"alice", forget_headers())
    [audit] = proc.ingest(request.encode(), marker)  # type: ignore[misc]
    assert pseudo.encode() not in users and proc.pseudonymize("bob").encode() in users  # type: ignore[misc]
    assert pseudo not in proc.adjust._last and pseudo not in proc.adjust.feedback._open
    entry = decode_value(audit.value)
    assert audit.topic == "streamrec.audit" and audit.key == pseudo.encode()
    assert entry["user_id"] == pseudo and entry["events_deleted"] == 3
    assert entry["request_id"] == request.request_id and b"alice" not in audit.value
    # A replayed request changes nothing more; a malformed one is dead-lettered.
    [again] = proc.ingest(request.encode(), marker)  # type: ignore[misc]
    assert decode_value(again.value)["events_deleted"] == 0
    [dead] = proc.ingest(b"{not json", marker)  # type: ignore[misc]
    assert dead.topic == "streamrec.events.dlq"
    assert dlq.headers_dict(dead.headers)["streamrec.reason"] == "invalid_control"


def test_event_categories_reach_the_adjuster_and_its_candidates() -> None:
    from stream_app.adjustment import OnlineAdjustment

    proc, _ = make()
    proc.adjust = OnlineAdjustment(10)
    for n in range(3):  # another user makes "hot" the top shoe
        run(proc, raw("bob", "hot", ts=NOW + n, category_id="shoes"), src("bob", n))
    run(proc, raw("bob", "cap", ts=NOW + 3, category_id="hats"), src("bob", 3))
    [out] = run(proc, raw("alice", "boot", ts=NOW + 4, category_id="shoes"), src("alice", 0))
    assert proc.adjust.signals.category("boot") == "shoes"
    assert "hot" in [r["item_id"] for r in decode_value(out.value)["items"]]
    assert "hot" in proc.adjust.feedback._open["alice"][0].items  # a candidate


def test_an_answer_without_influences_is_published_with_an_empty_list() -> None:
    from models.base import Scored
    from stream_app.processor import Answer

    proc, _ = make()
    request = proc.ingest(raw(item="a"), src("u1", 0))
    assert isinstance(request, ScoreRequest)
    answer = Answer(Scored(items=[("b", 1.0)], influences=[]), {"name": "m", "version": "1"})
    [out] = proc.render([request], [answer])
    rec = decode_value(out.value)
    assert rec["influences"] == [] and rec["items"] == [{"item_id": "b", "score": 1.0}]
