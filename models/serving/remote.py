"""A :class:`~models.serving.scorer.NeuralScorer` in a child process, behind ``Scorer``.

Why: the worker's event loop is busy Python, and every torch op of an inference
thread in the same process releases and re-takes the GIL. Measured here with one
busy Python thread beside it, an inference thread scored 23 sequences/s at batch
64 (default 5 ms switch interval) against 3,216 alone. In its own process the
model never waits for the loop; a batch costs one pickle of the histories each
way, small next to the forward pass.

The child is spawned (not forked: the parent runs threads and an event loop),
loads the checkpoint once, and dies with its parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import signal
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from models.base import Interaction, Scored

_SCORER: Any = None


def _die_with_parent() -> None:
    """Linux: the scorer process gets SIGTERM when the worker dies, so none is orphaned."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _init(directory: str, device: str | None, influence: str, threads: int, precision: str) -> None:
    global _SCORER
    import torch

    from models.serving.scorer import NeuralScorer

    _die_with_parent()
    torch.set_num_threads(threads)
    _SCORER = NeuralScorer.load(
        directory, device=device, influence_method=influence, precision=precision
    )


def _describe() -> tuple[str, str, str]:
    return _SCORER.name, _SCORER.version, str(_SCORER.device)


def _score(sequences: Sequence[Sequence[Interaction]], k: int) -> list[Scored]:
    return _SCORER.score(sequences, k)


class ProcessScorer:
    """Loads ``directory`` in a child process; ``score`` blocks the calling thread only."""

    def __init__(
        self,
        directory: str | Path,
        device: str | None = None,
        influence_method: str = "grad_x_input",
        threads: int = 1,
        precision: str = "fp32",
    ) -> None:
        self._pool = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(str(directory), device, influence_method, threads, precision),
        )
        try:
            self.name, self._version, self.device = self._pool.submit(_describe).result()
        except BaseException:
            self._pool.shutdown(wait=False, cancel_futures=True)
            raise

    @property
    def version(self) -> str:
        return self._version

    def score(self, sequences: Sequence[Sequence[Interaction]], k: int) -> list[Scored]:
        return self._pool.submit(_score, [list(s) for s in sequences], k).result()

    def close(self) -> None:
        """Stop the child once the batches already submitted are done."""
        self._pool.shutdown(wait=True)
