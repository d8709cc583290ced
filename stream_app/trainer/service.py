"""The trainer's loop: consume, keep the window, run rounds beside it, promote or reject.

Reading never waits for training: a round runs on a worker thread with a copy
of the window's sequences while the loop goes on consuming. The window and the
input offsets are written to disk together every ``STREAMREC_TRAINER_SNAPSHOT_S``
(and at stop), then the offsets are committed to the trainer's group (for lag
monitoring; a restart resumes from the snapshot). The current model is re-read
from ``STREAMREC_MODEL_DIR`` before each round whenever its version changed, so a
checkpoint deployed by hand becomes the next round's starting point.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from models.nn.config import BlendConfig, ModelConfig
from models.serving import checkpoint
from models.serving.checkpoint import Checkpoint
from models.training.continual import ContinualConfig, RoundData, RoundResult, run_round
from stream_app.settings import Settings
from stream_app.trainer import publish
from stream_app.trainer import telemetry as metrics
from stream_app.trainer.intake import Intake
from stream_app.trainer.window import Window

log = logging.getLogger(__name__)


def continual_config(settings: Settings) -> ContinualConfig:
    s = settings
    return ContinualConfig(
        epochs=s.trainer_epochs,
        lr=s.trainer_lr,
        batch_size=s.trainer_batch_size,
        rel_margin=s.trainer_gate_margin,
        z=s.trainer_gate_z,
        shuffle_labels=s.trainer_shuffle_labels,
        scratch=ModelConfig(
            dim=s.trainer_dim,
            max_len=min(50, s.trainer_user_events),
            blend=BlendConfig(transition=s.trainer_transition_weight),
        ),
    )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    """The trainer's state between messages: window, current model, the round in flight."""

    def __init__(self, settings: Settings) -> None:
        if settings.model_dir is None:
            raise ValueError("the trainer needs STREAMREC_MODEL_DIR: where it publishes models")
        self.settings = settings
        self.model_dir: Path = settings.model_dir
        s = settings
        self.window = Window(
            s.trainer_window_events, s.trainer_user_events, int(s.trainer_window_age_s * 1000)
        )
        self.intake = Intake(settings, self.window)
        self.cfg = continual_config(settings)
        self.device = resolve_device(settings.device)
        self.current: Checkpoint | None = None
        self.anchor: Checkpoint | None = None  # an older ancestor the gate also compares with
        self.folded_seq = 0  # arrivals up to here are in the current model's transitions
        self.last_round_seq = 0
        self.last_round_at = time.monotonic()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="trainer-round")
        self.round: asyncio.Future[tuple[RoundResult, int, Checkpoint | None]] | None = None
        self.last_result: RoundResult | None = None  # the last round that judged a candidate
        self.snapshot_path = settings.trainer_dir / "window.msgpack"
        metrics.MODEL_AGE.set_function(self._model_age)

    # -- state ------------------------------------------------------------------
    def restore(self) -> None:
        """The window from its snapshot and the current model from the model directory."""
        if self.window.load(self.snapshot_path):
            log.info(
                "window restored: %d events of %d users, offsets %s",
                self.window.total,
                len(self.window.users),
                self.window.offsets,
            )
        self._refresh_current()
        self.window.seq = max(self.window.seq, self.folded_seq)
        self.last_round_seq = self.window.seq
        self._export_window()

    def _refresh_current(self) -> Checkpoint | None:
        """Load the model directory's checkpoint if its version is not the one held."""
        version = publish.current_version(self.model_dir)
        if version is None or (self.current is not None and self.current.version == version):
            return self.current
        try:
            self.current = checkpoint.load(self.model_dir, self.device)
        except Exception:
            log.exception("cannot load %s; keeping %s", self.model_dir, self.current)
            return self.current
        self.folded_seq = int(self.current.meta.get("trainer_folded_seq", 0))
        metrics.VOCAB_ITEMS.set(len(self.current.vocab))
        log.info("current model %s (%d items)", self.current.version, len(self.current.vocab))
        return self.current

    def _model_age(self) -> float:
        created = publish.created_at(self.current.meta) if self.current is not None else None
        return time.time() - created if created is not None else math.nan

    def _export_window(self) -> None:
        metrics.WINDOW_EVENTS.set(self.window.total)
        metrics.WINDOW_USERS.set(len(self.window.users))

    def snapshot(self) -> None:
        self.window.expire()
        self.window.save(self.snapshot_path)
        self._export_window()

    # -- rounds -----------------------------------------------------------------
    def due(self) -> bool:
        s = self.settings
        new = self.window.seq - self.last_round_seq
        if self.round is not None or new <= 0 or self.window.total < s.trainer_min_events:
            return False
        if s.trainer_every_events and new >= s.trainer_every_events:
            return True
        return time.monotonic() - self.last_round_at >= s.trainer_interval_s

    def start_round(self) -> None:
        """Copy what the round needs from the window and train on the worker thread."""
        self.window.expire()
        holdout = min(self.settings.trainer_holdout_events, self.window.total // 2)
        data = self.window.round_data(holdout, self.folded_seq)
        folded_through = self.window.seq - holdout
        self.last_round_seq, self.last_round_at = self.window.seq, time.monotonic()
        loop = asyncio.get_running_loop()
        self.round = loop.run_in_executor(self.executor, self._train, data, folded_through)

    def _train(
        self, data: RoundData, folded_through: int
    ) -> tuple[RoundResult, int, Checkpoint | None]:
        current = self._refresh_current()
        anchor = self._refresh_anchor(current)
        return run_round(current, data, self.cfg, self.device, anchor), folded_through, current

    def _refresh_anchor(self, current: Checkpoint | None) -> Checkpoint | None:
        """Load the oldest ancestor of ``current`` still kept, if it is not the one held."""
        version = publish.oldest_ancestor(self.settings, current.meta) if current else None
        if version is None:
            self.anchor = None
        elif self.anchor is None or self.anchor.version != version:
            try:
                self.anchor = checkpoint.load(
                    publish.versions_dir(self.settings) / version, self.device
                )
            except Exception:
                log.exception("cannot load the anchor %s; judging against current only", version)
                self.anchor = None
        return self.anchor

    def finish_round(self) -> None:
        """Promote or reject the finished round's candidate (or log why it failed)."""
        assert self.round is not None and self.round.done()
        future, self.round = self.round, None
        try:
            result, folded_through, parent = future.result()
        except Exception:
            log.exception("training round failed")
            metrics.ROUNDS.labels("failed").inc()
            return
        if result.examples == 0 or not result.candidate.get("users"):
            metrics.ROUNDS.labels("skipped").inc()
            return
        self.last_result = result
        self._export_round(result)
        meta = {
            "trainer": result.report(),
            "trainer_folded_seq": folded_through,
            "parent": parent.version if parent is not None else None,
        }
        if result.promote:
            self._promote(result, meta)
        else:
            self._reject(result, meta)

    def _export_round(self, r: RoundResult) -> None:
        metrics.TRAIN_SECONDS.set(r.seconds)
        metrics.TRAIN_EXAMPLES.set(r.examples)
        for model, values in (("candidate", r.candidate), ("current", r.current)):
            for name in metrics.HOLDOUT_METRICS:
                metrics.HOLDOUT.labels(model, name).set(values[name])

    def _promote(self, r: RoundResult, meta: dict[str, object]) -> None:
        versions = publish.versions_dir(self.settings)
        version = publish.write(versions, r.network, r.vocab, r.transitions, meta)
        target = publish.promote(self.settings, version)
        self.current = checkpoint.load(target, self.device)
        self.folded_seq = int(self.current.meta["trainer_folded_seq"])
        metrics.ROUNDS.labels("promoted").inc()
        metrics.VOCAB_ITEMS.set(len(r.vocab))
        log.info(
            "promoted %s: holdout NDCG@10 %.4f vs %s %.4f, %d new items, %d examples, %.1f s",
            version,
            r.candidate["NDCG@10"],
            r.reference,
            r.current["NDCG@10"],
            r.new_items,
            r.examples,
            r.seconds,
        )

    def _reject(self, r: RoundResult, meta: dict[str, object]) -> None:
        rejected = self.settings.trainer_dir / "rejected"
        version = publish.write(rejected, r.network, r.vocab, r.transitions, meta)
        publish.prune(rejected, self.settings.trainer_keep)
        metrics.ROUNDS.labels("rejected").inc()
        log.warning(
            "rejected %s: holdout NDCG@10 %.4f vs %s %.4f, gate %s; kept in %s",
            version,
            r.candidate["NDCG@10"],
            r.reference,
            r.current["NDCG@10"],
            r.gate,
            rejected / version,
        )

    async def wait_round(self) -> None:
        if self.round is not None:
            await asyncio.wait([self.round])
            self.finish_round()
