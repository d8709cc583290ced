"""The adjuster inside the worker: learns from every event, re-ranks every list.

Plugged into :class:`stream_app.processor.Processor` between the scorer and the
publisher. Per event (before it is applied to state) it scores the lists last
published to the user against it (live prequential quality, the adjusted list
and the scorer's own list as a shadow), lets the feedback join label them, and
the adjuster learns; per recommendation it re-ranks the scorer's answer. The
purchase-propensity head (:mod:`models.rerank.propensity`) predicts, with
each list, whether the user's next event is a purchase; the next event scores
that prediction (accuracy, precision, recall, F1, ROC AUC, Brier) and teaches
the head. Unlike the lists, it is scored on refreshes too: buying the item just
viewed or carted *is* the usual purchase (REES46: 210 of its 214 purchases).

Drift (:mod:`models.rerank.drift`): ADWIN on the live hit rate (counted and
logged) and Page-Hinkley on the adjuster's loss per labelling event (counted,
logged, and the adjuster is reset to re-learn the new regime). State here is per worker and in
memory, checkpointed to versioned files (:meth:`save` / :meth:`restore`: the
adjuster with its example count, the drift detectors and the purchase head) by the worker
periodically and at shutdown; users are bounded by an LRU of ``max_users``.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections import OrderedDict
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import NamedTuple

from models.base import Interaction, Scored
from models.rerank.base import Adjuster
from models.rerank.drift import DriftWatch, log_loss
from models.rerank.feedback import Example, FeedbackJoin
from models.rerank.logreg import LogRegAdjuster
from models.rerank.propensity import PurchasePropensity, purchase_features
from models.rerank.quality import ClassificationQuality, Prequential
from models.rerank.ranker import Candidates, Ranker
from models.rerank.signals import ItemSignals
from models.rerank.slots import SlotAdjuster
from stream_app import monitoring

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = 6  # 6: the purchase head without river's pipeline
#: The adjusters to choose from (``STREAMREC_ADJUST_MODEL``), picked by measurement.
ADJUSTERS: dict[str, type[Adjuster]] = {
    "slots": SlotAdjuster,
    "logreg": LogRegAdjuster,
}
KEEP_CHECKPOINTS = 3


class _Last(NamedTuple):
    """What was last published to a user, kept until their next event."""

    item: str  # the user's newest item when it was published
    adjusted: list[str]
    base: list[str]
    purchase: float | None = None  # P(next event is a purchase), not yet scored
    purchase_x: tuple[float, ...] | None = None  # its features (not changed after)


class Prepared(NamedTuple):
    """What :meth:`OnlineAdjustment.prepare` took from a history ahead of its rerank."""

    candidates: Candidates
    purchase_x: tuple[float, ...]
    purchase: float


class OnlineAdjustment:
    def __init__(
        self,
        k: int,
        alpha: float = 1.0,
        max_users: int = 200_000,
        purchase_threshold: float = 0.5,
        feedback_store: MutableMapping[bytes, bytes] | None = None,
        model: str = "slots",
        learn_every: int = 1,
    ) -> None:
        self.k = k
        self.learn_every = learn_every
        self._pending: list[Example] = []  # labelled, not yet learned
        self._pending_events = 0
        self.signals = ItemSignals()
        self.adjuster: Adjuster = ADJUSTERS[model]()
        self.ranker = Ranker(self.signals, alpha=alpha)
        self.feedback = FeedbackJoin(
            store=feedback_store, pack=not self.adjuster.shared_descriptions
        )
        self.quality = {"adjusted": Prequential(k), "base": Prequential(k)}
        self.drift = DriftWatch()
        self.purchase = PurchasePropensity()
        self.purchase_quality = ClassificationQuality(purchase_threshold)
        self._next_summary = 0.0  # monotonic time the gauges are next refreshed at
        self._observed = 0
        self.max_users = max_users
        self._last: OrderedDict[str, _Last] = OrderedDict()
        # Labelled metric children, looked up once (.labels() costs more than .inc()).
        self._live = {
            name: (
                monitoring.LIVE_HITS.labels(name),
                monitoring.LIVE_NDCG.labels(name),
                monitoring.LIVE_WINDOW.labels(name, "HR@10"),
                monitoring.LIVE_WINDOW.labels(name, "NDCG@10"),
            )
            for name in self.quality
        }

    @property
    def base_k(self) -> int:
        return max(self.k, self.ranker.base_k)

    @property
    def name(self) -> str:
        return f"{self.adjuster.name}@{self.adjuster.examples}"

    def observe(
        self, user: str, item: str, event_type: str, ts: int, category: str | None = None
    ) -> None:
        """A newly applied event: evaluate the user's last lists, learn, update signals
        (``category``: the item's, if the event names it)."""
        last = self._last.get(user)
        refresh = last is not None and last.item == item
        if last is not None and last.purchase is not None and last.purchase_x is not None:
            self.score_purchase(last.purchase, last.purchase_x, event_type == "purchase")
        if last is not None and not refresh:
            for name, ranked in (("adjusted", last.adjusted), ("base", last.base)):
                q = self.quality[name]
                hit, ndcg = q.add(ranked, item)
                hits, ndcgs, window_hr, window_ndcg = self._live[name]
                if hit:  # most lists miss: adding 0 takes the counter's lock for nothing
                    hits.inc(hit)
                    ndcgs.inc(ndcg)
                if q.events % 10 == 0:  # a gauge over 1,000 events: fresh enough
                    window_hr.set(q.window_hr)
                    window_ndcg.set(q.window_ndcg)
                if name == "adjusted" and self.drift.update_hit(hit):
                    monitoring.DRIFT_DETECTIONS.labels("hit_rate").inc()
            monitoring.LIVE_EVALUATED.inc()
        if not refresh:
            self.learn(self.feedback.observe(user, item, event_type, ts))
        self.signals.observe(item, ts, category)
        self._observed += 1
        if self._observed % 100_000 == 0:
            self.signals.forget_older_than(ts)  # items untouched for a day
        if last is not None:
            self._last[user] = _Last(item, last.adjusted, last.base)

    def score_purchase(self, p: float, x: tuple[float, ...], bought: bool) -> None:
        """Score a purchase prediction against what the user did next, then learn it
        (``x``: its features, in :data:`PURCHASE_FEATURES` order)."""
        self.purchase_quality.add(bought, p)
        self.purchase.learn_one(x, bought)
        monitoring.PURCHASE_EVALUATED.inc()
        # Reading the metrics costs ~200 us: at most once a second, checked every 100.
        if (
            self.purchase_quality.events % 100 == 0
            and (now := time.monotonic()) >= self._next_summary
        ):
            self._next_summary = now + 1.0
            summary = self.purchase_quality.summary()
            for name in ClassificationQuality.NAMES:
                monitoring.PURCHASE_QUALITY.labels(name, "cumulative").set(summary[name])
                monitoring.PURCHASE_QUALITY.labels(name, "last_1000").set(summary["window"][name])

    def forget(self, user: str) -> None:
        """Drop everything held about ``user`` (erasure): last lists, open feedback lists."""
        self._last.pop(user, None)
        self.feedback.forget(user)

    def learn(self, examples: Sequence[Example]) -> None:
        """Learn the examples one event labelled. Their mean log loss, before
        learning, goes to the drift watch; on a rise (drift) the adjuster is reset
        first. (One detector update per event, not per example: a third of the cost.)

        The adjuster learns them in blocks of ``learn_every`` labelling events
        (:meth:`flush`): the predictions in between are cached and one update
        per slot replaces one per example. Blocks count events, not batches, so
        a log replayed in any batching learns the same."""
        if not examples:
            return  # nothing learned: the examples gauge stands
        ps = self.adjuster.predict_many([x for x, _, _ in examples])
        loss = sum(log_loss(p, y) for p, (_, y, _) in zip(ps, examples, strict=True))
        if self.drift.update_loss(loss / len(examples)):
            monitoring.DRIFT_DETECTIONS.labels("loss").inc()
            monitoring.ADJUSTER_RESETS.inc()
            self.adjuster.reset()
            self._pending.clear()  # learned before the drift: not the new regime
            self._pending_events = 0
        self._pending += examples
        self._pending_events += 1
        if self._pending_events >= self.learn_every:
            self.flush()

    def flush(self) -> None:
        """Learn every labelled example not learned yet."""
        if self._pending:
            self.adjuster.learn_many(self._pending)
            self._pending = []
        self._pending_events = 0
        monitoring.ADJUSTER_EXAMPLES.set(self.adjuster.examples)

    def prepare(self, history: Sequence[Interaction]) -> Prepared:
        """The part of :meth:`rerank` that needs no scorer answer, taken early.

        It reads the history, the item signals and the purchase head, which only
        :meth:`observe` changes: taken after the observations that precede the
        rerank, it is what the rerank would have read (a served model's batch
        takes it while the model scores)."""
        x = purchase_features(history)
        return Prepared(self.ranker.candidates(history), x, self.purchase.predict_one(x))

    def rerank(
        self,
        user: str,
        history: Sequence[Interaction],
        base: Scored,
        prepared: Prepared | None = None,
    ) -> Scored:
        """Re-rank the scorer's answer for ``user`` and open its list for feedback
        (``prepared``: :meth:`prepare` of ``history``, if taken already)."""
        early = prepared if prepared is not None else self.prepare(history)
        ranked = self.ranker.rank(self.adjuster, history, base, self.k, early.candidates)
        now = history[-1].ts if history else 0
        self.feedback.publish(user, now, ranked.pool, ranked.xs)
        current = history[-1].item_id if history else ""
        adjusted = [i for i, _ in ranked.items]
        x, purchase = early.purchase_x, early.purchase
        base_items = [i for i, _ in base.items[: self.k]]
        self._last[user] = _Last(current, adjusted, base_items, purchase, x)
        self._last.move_to_end(user)
        if len(self._last) > self.max_users:
            self._last.popitem(last=False)
        # Influences explain the scorer's answer, which the adjusted list re-ranks.
        return Scored(ranked.items, base.influences, purchase)

    # -- checkpoints ----------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        """Write ``adjuster-<examples>.pkl`` atomically; keep the newest few."""
        directory.mkdir(parents=True, exist_ok=True)
        self.flush()
        state = {
            "format": CHECKPOINT_FORMAT,
            "adjuster": self.adjuster,
            "drift": self.drift,
            "purchase": self.purchase,
        }
        path = directory / f"adjuster-{self.adjuster.examples:012d}.pkl"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(state))
        os.replace(tmp, path)
        for old in sorted(directory.glob("adjuster-*.pkl"))[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)
        return path

    def restore(self, directory: Path) -> bool:
        """Load the newest readable checkpoint in ``directory``, if any."""
        for path in sorted(directory.glob("adjuster-*.pkl"), reverse=True):
            try:
                state = pickle.loads(path.read_bytes())
                if state.get("format") != CHECKPOINT_FORMAT:
                    continue
                if type(state["adjuster"]) is not type(self.adjuster):
                    log.warning("adjuster checkpoint %s is of another model; not used", path)
                    continue
            except Exception:  # a torn or foreign file: try the previous one
                log.warning("adjuster checkpoint %s unreadable; trying an older one", path)
                continue
            self.adjuster = state["adjuster"]
            self.drift = state["drift"]
            self.purchase = state["purchase"]
            monitoring.ADJUSTER_EXAMPLES.set(self.adjuster.examples)
            log.info("adjuster restored from %s (%d examples)", path, self.adjuster.examples)
            return True
        return False
