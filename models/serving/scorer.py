"""The serving scorer: a trained sequence model behind the pipeline's ``Scorer`` protocol.

Usage (the worker builds one per process and calls ``score`` per batch)::

    scorer = NeuralScorer.load("runs/beauty-transformer")
    [answer] = scorer.score([[Interaction("42", "view", 0)]], k=10)
    answer.items, answer.influences

Robust to what live traffic sends: unknown item ids embed as "unknown" (and
never appear in answers), empty sequences get the popularity ranking with no
influences, and sequences longer than the model window are scored on their most
recent ``max_len`` events (older events get influence 0).

Speed: a call is split into groups of similar length, each padded to one of a
few bucket widths (so shapes repeat and short histories are not padded to 50);
a width with few rows joins the next wider one (:func:`width_groups`).
Each group takes one :class:`models.serving.fused_pass.ServingPass`: a forward pass, a
top-k, and a backward pass through the encoder only for grad x input
influences; with ``influence_method="none"`` it runs under
``torch.inference_mode`` and influences are empty. ``precision`` (``fp32``,
``bf16``, ``int8``) is the arithmetic of the pass (:mod:`models.serving.precision`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from models.base import Interaction, Scored
from models.datasets import UserSequence
from models.nn.batching import collate
from models.nn.config import ModelConfig
from models.nn.predictor import Predictor
from models.serving import checkpoint
from models.serving.fused_pass import ServedBatch, ServingPass
from models.serving.influence import influences, normalised_weights
from models.training.data import EncodedSequence, encode

BUCKETS = (8, 16, 32, 64, 128, 256)
INFLUENCE_METHODS = ("grad_x_input", "leave_one_out", "none")
# A call costs about a millisecond whatever its rows (Beauty, one thread): a width
# with fewer rows than this is padded to the next one instead. Measured at 33
# histories a batch: 15.0 -> 13.4 ms, the same top items (docs/benchmarks.md).
MIN_GROUP_ROWS = 16
Group = tuple[int, list[int]]  # a padding width, and the rows padded to it


def bucket_widths(max_len: int) -> list[int]:
    """Padding widths for a model window: the fixed buckets below it, then the window.

    >>> bucket_widths(50)
    [8, 16, 32, 50]
    """
    return [b for b in BUCKETS if b < max_len] + [max_len]


def width_groups(widths: Sequence[int], min_rows: int = MIN_GROUP_ROWS) -> list[Group]:
    """The rows of each padding width, narrowest first, as (width, row indices); a
    width with fewer than ``min_rows`` rows joins the next wider one (the widest
    keeps what is left).

    >>> width_groups([8, 8, 16, 50, 8], min_rows=3)
    [(8, [0, 1, 4]), (50, [2, 3])]
    """
    rows: dict[int, list[int]] = {}
    for i, width in enumerate(widths):
        rows.setdefault(width, []).append(i)
    out: list[Group] = []
    carried: list[int] = []
    ordered = sorted(rows)
    for width in ordered:
        carried += rows[width]
        if len(carried) >= min_rows or width == ordered[-1]:
            out.append((width, sorted(carried)))
            carried = []
    return out


class NeuralScorer:
    """Scores next items with a checkpointed Transformer/LSTM (plus its blended signals)."""

    def __init__(
        self,
        ckpt: checkpoint.Checkpoint,
        device: str | torch.device = "cpu",
        influence_method: str = "grad_x_input",
        batch_size: int = 256,
        precision: str = "fp32",
    ) -> None:
        if influence_method not in INFLUENCE_METHODS:
            raise ValueError(f"influence_method must be one of {INFLUENCE_METHODS}")
        self._ckpt = ckpt
        self._device = torch.device(device)
        ckpt.network.to(self._device).eval().requires_grad_(False)
        self._predictor = Predictor(ckpt.network, ckpt.transitions, self._device)
        self._serving = ServingPass(self._predictor, precision)
        self.precision = precision
        self._widths = bucket_widths(ckpt.network.config.max_len)
        self.influence_method = influence_method
        self.batch_size = batch_size
        self.name = f"neural-{ckpt.network.config.arch}"

    @classmethod
    def load(
        cls, directory: str | Path, device: str | None = None, **kwargs: object
    ) -> NeuralScorer:
        """Load a checkpoint directory; CUDA when present unless ``device`` says otherwise."""
        dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(checkpoint.load(directory, dev), dev, **kwargs)  # type: ignore[arg-type]

    @property
    def version(self) -> str:
        return self._ckpt.version

    @property
    def config(self) -> ModelConfig:
        """The served network's configuration (architecture, sizes)."""
        return self._ckpt.network.config

    @property
    def device(self) -> torch.device:
        return self._device

    def width_for(self, length: int) -> int:
        """The bucket width a history of ``length`` events is padded to."""
        return next((w for w in self._widths if length <= w), self._widths[-1])

    def score(self, sequences: Sequence[Sequence[Interaction]], k: int) -> list[Scored]:
        encoded = [self._encode(seq) for seq in sequences]
        out: list[Scored] = []
        for start in range(0, len(encoded), self.batch_size):
            out += self._score_part(encoded[start : start + self.batch_size], k)
        return out

    def _encode(self, seq: Sequence[Interaction]) -> EncodedSequence:
        cfg = self._ckpt.network.config
        user = UserSequence(
            "", [e.item_id for e in seq], [e.event_type for e in seq], [int(e.ts) for e in seq]
        )
        enc = encode(user, self._ckpt.vocab, cfg.use_events)
        if not cfg.use_time:
            enc.ts = None  # the model never saw real gaps; keep train and serve alike
        return enc

    def _score_part(self, encoded: list[EncodedSequence], k: int) -> list[Scored]:
        """One catalogue-wide pass for ``encoded``, padded in groups of similar length."""
        cfg = self._ckpt.network.config
        groups = width_groups([self.width_for(len(enc.items)) for enc in encoded])
        batches = []
        for width, idx in groups:
            batch = collate([encoded[i] for i in idx], cfg.max_len, cfg.use_time, width)
            if self._device.type == "cuda":
                batch = batch.pin_memory().to(self._device, non_blocking=True)
            else:
                batch = batch.to(self._device)
            batches.append(batch)
        n_top = max(1, min(k, cfg.n_items))  # >= 1 so influences always have an item to explain
        with_influences = self.influence_method == "grad_x_input"
        served = self._serving.run_many(batches, n_top, with_influences)
        out: list[Scored | None] = [None] * len(encoded)
        for (_, idx), one in zip(groups, served, strict=True):
            group = [encoded[i] for i in idx]
            for i, res in zip(idx, self._answers(group, one, k), strict=True):
                out[i] = res
        return out  # type: ignore[return-value]

    def _answers(self, encoded: list[EncodedSequence], served: ServedBatch, k: int) -> list[Scored]:
        cfg = self._ckpt.network.config
        if not torch.isfinite(served.top_scores).all():
            raise RuntimeError(f"{self.name} {self.version}: non-finite scores")
        lengths = [len(e.items) for e in encoded]
        if served.contributions is not None:
            weights = normalised_weights(served.contributions, lengths, cfg.max_len)
        elif self.influence_method == "leave_one_out":
            top = served.top_cols[:, 0].to(self._device)
            weights = influences(self._predictor, encoded, top, self.influence_method)
        else:
            weights = [[] for _ in encoded]
        cols, vals = served.top_cols.tolist(), served.top_scores.tolist()
        column_item = self._ckpt.vocab.column_item
        return [
            Scored(
                [(column_item(c), s) for c, s in zip(cols[row], vals[row], strict=True)][:k],
                weights[row] if lengths[row] else [],
            )
            for row in range(len(encoded))
        ]
