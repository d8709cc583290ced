"""Serving a trained model in the worker: the micro-batcher, and hot reload of checkpoints.

Scoring requests from every event in flight are gathered by
:class:`models.serving.microbatch.MicroBatcher` and run on its inference thread through
:meth:`Processor.score`, one batch at a time; each answer then comes back to the
event loop, where :meth:`Processor.render` adjusts it (the online adjuster lives
on the loop, with the rest of the state) and builds the output message.
By default the model itself runs in a child process (:mod:`models.serving.remote`), so
its Python work never waits for the event loop's GIL.

Hot reload: every ``STREAMREC_MODEL_RELOAD_S`` seconds the worker reads the
version in ``$STREAMREC_MODEL_DIR/meta.json``. When it changed, the new
checkpoint is loaded on a side thread and swapped in between two batches: every
batch is scored by exactly one model, whose version its messages carry, and no
event is dropped or repeated (events do not pass through the swap; only the
scorer reference changes). Deploy by repointing a symlink (``ln -sfn new tmp &&
mv -T tmp current``) so the directory never shows a half-written checkpoint; a
checkpoint that fails to load is logged and counted, and the old model stays.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from models.base import Scorer
from models.serving.microbatch import MicroBatcher
from stream_app import monitoring
from stream_app.outgoing import Outgoing
from stream_app.processor import Answer, Processor, ScoreRequest
from stream_app.settings import Settings

log = logging.getLogger(__name__)


def checkpoint_version(model_dir: Path) -> str | None:
    """The version a checkpoint directory holds now, or None if it cannot be read."""
    try:
        return str(json.loads((model_dir / "meta.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


class ModelServer:
    def __init__(
        self, settings: Settings, processor: Processor, load: Callable[[], Scorer]
    ) -> None:
        self.settings = settings
        self.processor = processor
        self.load = load
        self.batcher: MicroBatcher[ScoreRequest, Answer] = MicroBatcher(
            processor.score,
            # A model in its own process is fed from the loop, with no thread between.
            afn=processor.score_async if settings.inference == "process" else None,
            max_batch_size=settings.batch_max_size,
            max_delay_ms=settings.batch_max_delay_ms,
            max_queue=settings.batch_queue_size,
            observer=monitoring.BatcherMetrics(),
            thread_init=self._init_thread,
            name="scorer",
        )
        self._reloading = False
        # The batcher's thread needs the GIL to hand batches over and take results
        # back; at the default 5 ms switch interval it waits behind the busy loop.
        # Measured with a busy Python thread beside it: 1,372 -> 2,247 sequences/s.
        sys.setswitchinterval(0.0005)

    def _init_thread(self) -> None:
        if self.settings.inference == "process":
            return  # the child process sets its own thread count
        import torch

        # One intra-op thread by default: the event loop and (often) the broker
        # need the other cores, and OpenMP teams driven from a second thread were
        # measured slower than one thread here (scripts/bench_batcher.py).
        torch.set_num_threads(self.settings.torch_threads)

    async def score_all(self, requests: Sequence[ScoreRequest]) -> list[Answer | BaseException]:
        """Every request's answer (or the exception its scoring raised), in order,
        submitted to the micro-batcher together."""
        return await self.batcher.submit_many(requests)

    async def dispatched(self) -> None:
        """Return once what was submitted is on its way to the model (or must wait
        for the batch before it), so the loop's next work overlaps the model's."""
        await self.batcher.dispatched()

    async def recommend(self, request: ScoreRequest) -> list[Outgoing]:
        answer = await self.batcher.submit(request)
        return self.processor.render([request], [answer])

    async def reload_if_changed(self) -> bool:
        """Swap in the checkpoint now in the model directory if its version is new."""
        assert self.settings.model_dir is not None
        version = checkpoint_version(self.settings.model_dir)
        if self._reloading or version is None or version == self.processor.scorer.version:
            return False
        self._reloading = True
        try:
            scorer = await asyncio.get_running_loop().run_in_executor(None, self.load)
        except Exception:
            log.exception("hot reload of %s failed; keeping the current model", version)
            monitoring.MODEL_RELOADS.labels("failed").inc()
            return False
        finally:
            self._reloading = False
        previous = self.processor.scorer
        self.processor.scorer = scorer  # picked up by the next batch
        # A child process of the old model finishes its batch in flight, then exits.
        await asyncio.get_running_loop().run_in_executor(None, _close, previous)
        old = previous.version
        monitoring.MODEL_RELOADS.labels("ok").inc()
        monitoring.export_model(self.processor.scorer)
        log.info("hot reload: %s -> %s", old, scorer.version)
        return True

    async def close(self) -> None:
        await self.batcher.close()
        _close(self.processor.scorer)


def _close(scorer: Scorer) -> None:
    close = getattr(scorer, "close", None)
    if close is not None:
        close()
