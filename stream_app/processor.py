"""What the worker does with one input message, free of Faust and Kafka.

Data flows one way: bytes -> event -> state -> scorer -> recommendation.
:meth:`Processor.ingest` validates, routes and updates state; it returns either
messages to publish at once (dead letters, reroutes) or a :class:`ScoreRequest`.
:meth:`Processor.recommend` scores a batch of requests and returns the
recommendation messages. The split lets scoring be batched across users.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from models.base import Interaction, Learner, Scored, Scorer
from stream_app import monitoring
from stream_app.adjustment import OnlineAdjustment, Prepared
from stream_app.control import CONTROL_HEADER, FORGET, SWEEP
from stream_app.dlq import dead_letter
from stream_app.erasure import ForgetRequest, InvalidRequest, audit_entry
from stream_app.events import InvalidEvent, parse
from stream_app.outgoing import Header, Outgoing
from stream_app.pseudonym import Pseudonymizer
from stream_app.routing import REROUTED_HEADER, partition_for
from stream_app.serializers import value_encoder
from stream_app.settings import Settings
from stream_app.state.decoded import Decoded
from stream_app.state.user_state import UserState

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Source:
    """Where a message came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    headers: Sequence[Header] = ()

    @property
    def coordinates(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)

    @property
    def identity(self) -> str:
        """``topic:partition:offset``: the id of an event that brings none."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    def header(self, name: str) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


# What the adjuster observes of an applied event: user, item, event type, ts, category.
Observation = tuple[str, str, str, int, str | None]


@dataclass(slots=True)
class ScoreRequest:
    """A valid event applied to state, waiting to be scored."""

    user_id: str  # pseudonymous when a secret is configured
    history: list[Interaction]
    event_id: str
    event_ts: int
    # The adjuster's part, when taken apart from ingest (see Processor.observe).
    observation: Observation | None = None
    prepared: Prepared | None = None
    failure: Exception | None = None  # raised by that part: the event goes to the DLQ


class Answer(NamedTuple):
    """A scorer's answer for one request, and the model (name, version) that gave it."""

    scored: Scored
    model: dict[str, str]


class Processor:
    def __init__(
        self,
        settings: Settings,
        users: MutableMapping[bytes, bytes],
        scorer: Scorer,
        learner: Learner | None = None,
        adjust: OnlineAdjustment | None = None,
    ) -> None:
        self.settings = settings
        self.users = users
        # Users' states decoded once read; changed in a batch, written once.
        self.states = Decoded(users, UserState.decode, UserState.encode, settings.user_cache_size)
        self.scorer = scorer
        self.learner = learner
        self.adjust = adjust
        self.pseudonymize = Pseudonymizer.from_settings(settings)
        self._encode = value_encoder(settings.output_format)

    # -- ingest -----------------------------------------------------------------
    def ingest(
        self, raw: bytes | None, src: Source, defer: bool = False
    ) -> ScoreRequest | list[Outgoing]:
        """Validate, route and apply one message. ``defer``: leave the adjuster's
        observation of the event to :meth:`observe` (it reads none of the state)."""
        s = self.settings
        marker = src.header(CONTROL_HEADER)
        if marker == SWEEP:
            self.sweep(src.partition)
            return []
        if marker == FORGET:
            return self.forget(raw, src)
        try:
            event = parse(raw, s.max_event_bytes)
        except InvalidEvent as exc:
            return [self._dead(raw, src, exc)]

        # Every event of a user must be handled by the partition owning the
        # user, or two partitions would write the same state key.
        user_key = event.user_id.encode()
        owner = partition_for(user_key, s.partitions)
        rerouted_from = src.header(REROUTED_HEADER)
        if src.partition != owner and rerouted_from is None:
            monitoring.REROUTED.inc()
            origin = src.identity.encode()
            return [Outgoing(s.input_topic, user_key, raw or b"", [(REROUTED_HEADER, origin)])]

        event_id = event.event_id or (
            rerouted_from.decode() if rerouted_from is not None else src.identity
        )
        user_id = self.pseudonymize(event.user_id) if self.pseudonymize else event.user_id
        state_key = user_id.encode()
        stored = self.states.get(state_key, src.partition)
        state = stored if stored is not None else UserState()
        observation = None

        if src.offset > state.last_offset:
            try:
                self._check_time(event.ts, state)
            except InvalidEvent as exc:
                return [self._dead(raw, src, exc)]
            applied = state.apply(
                event.item_id,
                event.event_type,
                event.ts,
                event.event_id,
                src.offset,
                s.history_len,
            )
            # last_offset moved even for a repeated event_id: persist either way.
            state.partition = src.partition
            self.states.put(state_key, src.partition, state)
            if stored is None:
                monitoring.STATE_USERS.inc()
            if applied and self.learner is not None:
                pos = state.position_of(event.event_id, event.ts, event.item_id)
                prev = state.records[pos - 1].item_id if pos > 0 else None
                self.learner.learn_one(prev, event.item_id, src.partition, src.offset)
            if applied and self.adjust is not None:
                seen = (user_id, event.item_id, event.event_type, event.ts, event.category_id)
                if defer:
                    observation = seen
                else:
                    self.adjust.observe(*seen)
            if not applied:
                monitoring.DUPLICATES.inc()
        else:
            monitoring.DUPLICATES.inc()

        monitoring.consumed(event.event_type).inc()
        return ScoreRequest(user_id, state.interactions(), event_id, event.ts, observation)

    def observe(self, req: ScoreRequest) -> None:
        """The adjuster observes the event :meth:`ingest` deferred (a served model's
        batch: while the model scores it). Events in input order, each as the current
        event: the adjuster reads the open lists of the event's partition."""
        if self.adjust is None or req.observation is None:
            return
        try:
            self.adjust.observe(*req.observation)
        except Exception as exc:
            log.exception("the adjuster failed to observe %s", req.event_id)
            req.failure = exc
        req.observation = None

    def prepare(self, requests: Sequence[ScoreRequest]) -> None:
        """The adjuster's share of rendering that needs no answer, taken early: only
        after every observation that precedes the renders (see
        :meth:`OnlineAdjustment.prepare`)."""
        if self.adjust is None:
            return
        for req in requests:
            if req.failure is None and req.prepared is None:
                try:
                    req.prepared = self.adjust.prepare(req.history)
                except Exception as exc:
                    log.exception("the adjuster failed to prepare %s", req.event_id)
                    req.failure = exc

    def sweep(self, partition: int) -> int:
        """Forget the users of ``partition`` idle for longer than the user TTL.

        Runs in stream iteration of a sweep marker on that partition (see
        :mod:`stream_app.control`), so the deletions go to the right changelog
        partition. Returns how many users were removed.
        """
        cutoff = int(time.time() * 1000) - int(self.settings.user_ttl_s * 1000)
        expired = [
            key
            for key, state in self.states.items()
            if state.partition == partition and state.idle_since(cutoff)
        ]
        for key in expired:
            self.states.delete(key)
            if self.adjust is not None:
                self.adjust.forget(key.decode())  # its open lists (and table entry) too
        monitoring.USERS_EXPIRED.inc(len(expired))
        monitoring.STATE_USERS.dec(len(expired))
        return len(expired)

    def forget(self, raw: bytes | None, src: Source) -> list[Outgoing]:
        """Erase a user (an erasure request forwarded to the user's input partition).

        Deletes the user's state (a changelog tombstone) and the adjuster's
        per-user data, and returns the audit entry. Runs in stream order, so a
        replay re-applies the user's earlier events and then this erasure again.
        """
        try:
            request = ForgetRequest.decode(raw)
        except InvalidRequest as exc:
            return [self.invalid_control(raw, src, exc)]
        user_id = self.pseudonymize(request.user_id) if self.pseudonymize else request.user_id
        key = user_id.encode()
        deleted = 0
        stored = self.states.get(key, src.partition)
        if stored is not None:
            deleted = len(stored.records)
            self.states.delete(key)
            monitoring.STATE_USERS.dec()
        if self.adjust is not None:
            self.adjust.forget(user_id)
        monitoring.USERS_ERASED.inc()
        log.info("erasure request %s carried out (%d events)", request.request_id, deleted)
        entry = audit_entry(request, user_id, deleted, src.partition, src.offset)
        return [Outgoing(self.settings.audit_topic, key, entry)]

    def invalid_control(self, raw: bytes | None, src: Source, exc: InvalidRequest) -> Outgoing:
        return self._dead(raw, src, InvalidEvent("invalid_control", str(exc)))

    def _check_time(self, ts: int, state: UserState) -> None:
        s = self.settings
        now = int(time.time() * 1000)
        if ts > now + s.max_future_ms:
            raise InvalidEvent("ts_in_future", f"ts {ts} is {ts - now} ms ahead of the clock")
        newest = state.newest_ts
        if newest is not None and ts < newest - s.max_lateness_ms:
            raise InvalidEvent(
                "too_late", f"ts {ts} is {newest - ts} ms older than the user's newest event"
            )

    def failed(self, raw: bytes | None, src: Source, exc: Exception) -> Outgoing:
        """The dead letter for an event whose processing raised unexpectedly."""
        detail = f"{type(exc).__name__}: {exc}"[:500]
        return self._dead(raw, src, InvalidEvent("processing_error", detail))

    def _dead(self, raw: bytes | None, src: Source, exc: InvalidEvent) -> Outgoing:
        monitoring.INVALID_EVENTS.labels(exc.reason).inc()
        monitoring.DLQ_MESSAGES.inc()
        s = self.settings
        return dead_letter(
            s.dlq_topic, raw, src.key, exc.reason, exc.detail, src.coordinates, s.dlq_max_bytes
        )

    # -- recommend --------------------------------------------------------------
    def recommend(self, requests: Sequence[ScoreRequest]) -> list[Outgoing]:
        """Score, adjust and render at once (the inline path)."""
        return self.render(requests, self.score(requests))

    def score(self, requests: Sequence[ScoreRequest]) -> list[Answer]:
        """The scorer's answers, each with the model that gave it. Thread-safe: the
        micro-batcher runs this on its inference thread."""
        scorer = self.scorer  # read once: a hot reload may swap it meanwhile
        model = {"name": scorer.name, "version": scorer.version}
        return [Answer(res, model) for res in scorer.score(self._histories(requests), self.k)]

    async def score_async(self, requests: Sequence[ScoreRequest]) -> list[Answer]:
        """:meth:`score` with a scorer that answers on the event loop (a model in its own
        process, :meth:`~models.serving.remote.ProcessScorer.score_async`), else on a
        thread of the loop's executor."""
        scorer = self.scorer
        on_loop = getattr(scorer, "score_async", None)
        if on_loop is None:
            return await asyncio.to_thread(self.score, requests)
        model = {"name": scorer.name, "version": scorer.version}
        return [Answer(res, model) for res in await on_loop(self._histories(requests), self.k)]

    @property
    def k(self) -> int:
        """How many items the scorer is asked for: the adjuster re-ranks a longer list."""
        return self.adjust.base_k if self.adjust is not None else self.settings.top_k

    @staticmethod
    def _histories(requests: Sequence[ScoreRequest]) -> list[list[Interaction]]:
        return [r.history for r in requests]

    def render(self, requests: Sequence[ScoreRequest], answers: Sequence[Answer]) -> list[Outgoing]:
        """Adjust the scorers' answers and build the output messages. Runs on the event
        loop, like :meth:`ingest`: the adjuster is not shared with another thread."""
        s = self.settings
        adjust = self.adjust
        encode = self._encode
        out = []
        now = int(time.time() * 1000)
        for req, (res, model) in zip(requests, answers, strict=True):
            if req.failure is not None:
                raise req.failure
            if adjust is not None:
                res = adjust.rerank(req.user_id, req.history, res, req.prepared)
                model = {**model, "adjuster": adjust.name}
            rec = {
                "user_id": req.user_id,
                "items": [{"item_id": i, "score": sc} for i, sc in res.items],
                "influences": [
                    {"item_id": item, "event_type": kind, "ts": ts, "weight": w}
                    # none when the scorer was asked for none (STREAMREC_INFLUENCE=none)
                    for (item, kind, ts), w in zip(
                        req.history if res.influences else (), res.influences, strict=True
                    )
                ],
                "model": model,
                "source_event_id": req.event_id,
                "event_ts": req.event_ts,
                "emitted_ts": now,
            }
            if res.purchase is not None:
                rec["purchase_propensity"] = res.purchase
            out.append(Outgoing(s.output_topic, req.user_id.encode(), encode(rec)))
        return out
