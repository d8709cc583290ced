"""The serving scorer: a trained sequence model behind the pipeline's ``Scorer`` protocol.

Usage (the worker builds one per process and calls ``score`` per batch)::

    scorer = NeuralScorer.load("runs/beauty-transformer")
    [answer] = scorer.score([[Interaction("42", "view", 0)]], k=10)
    answer.items, answer.influences

Robust to what live traffic sends: unknown item ids embed as "unknown" (and
never appear in answers), empty sequences get the popularity ranking with no
influences, and sequences longer than the model window are scored on their most
recent ``max_len`` events (older events get influence 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from models import checkpoint
from models.base import Interaction, Scored
from models.batching import collate
from models.data import UserSequence, encode
from models.influence import influences
from models.predictor import Predictor


class NeuralScorer:
    """Scores next items with a checkpointed Transformer/LSTM (plus its blended signals)."""

    def __init__(
        self,
        ckpt: checkpoint.Checkpoint,
        device: str | torch.device = "cpu",
        influence_method: str = "grad_x_input",
        batch_size: int = 256,
    ) -> None:
        self._ckpt = ckpt
        self._device = torch.device(device)
        ckpt.network.to(self._device).eval()
        self._predictor = Predictor(ckpt.network, ckpt.transitions, self._device)
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

    def score(self, sequences: Sequence[Sequence[Interaction]], k: int) -> list[Scored]:
        out: list[Scored] = []
        for i in range(0, len(sequences), self.batch_size):
            out += self._score_chunk(sequences[i : i + self.batch_size], k)
        return out

    def _score_chunk(self, sequences: Sequence[Sequence[Interaction]], k: int) -> list[Scored]:
        if not sequences:
            return []
        cfg = self._ckpt.network.config
        vocab = self._ckpt.vocab
        encoded = []
        for seq in sequences:
            user = UserSequence(
                "", [e.item_id for e in seq], [e.event_type for e in seq], [int(e.ts) for e in seq]
            )
            enc = encode(user, vocab, cfg.use_events)
            if not cfg.use_time:
                enc.ts = None  # the model never saw real gaps; keep train and serve alike
            encoded.append(enc)
        scores = self._predictor.score(collate(encoded, cfg.max_len, cfg.use_time))
        if not torch.isfinite(scores).all():
            raise RuntimeError(f"{self.name} {self.version}: non-finite scores")
        # At least one column so influences always have a top item to explain.
        top_scores, top_cols = scores.topk(max(1, min(k, scores.shape[1])), dim=1)
        weights = influences(self._predictor, encoded, top_cols[:, 0], self.influence_method)
        results = []
        for row, enc in enumerate(encoded):
            items = [
                (vocab.column_item(int(c)), float(s))
                for c, s in zip(top_cols[row].tolist(), top_scores[row].tolist(), strict=True)
            ][: max(k, 0)]
            results.append(Scored(items, weights[row] if len(enc.items) else []))
        return results
