"""Shared fixtures for the model tests (factories, so each test builds what it needs)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from models.nn.config import ModelConfig
from models.nn.network import SequenceRecommender
from models.training.data import EncodedSequence

ROOT = Path(__file__).resolve().parents[2]

MakeNetwork = Callable[..., SequenceRecommender]
MakeSeq = Callable[..., EncodedSequence]


@pytest.fixture
def datasets() -> Path:
    """Shared benchmark files; override with STREAMREC_DATASETS."""
    return Path(os.environ.get("STREAMREC_DATASETS", ROOT.parent / "shared" / "datasets"))


@pytest.fixture
def make_network() -> MakeNetwork:
    """Tiny randomly initialised network (30 items, width 16, window 8), in eval mode.

    ``"bsarec-causal"`` is bsarec with the causal (one-pass) filter scope.
    """

    def make(arch: str, seed: int = 0, **kw: object) -> SequenceRecommender:
        base: dict[str, object] = dict(
            arch=arch, n_items=30, dim=16, n_layers=2, n_heads=2, dropout=0.0, max_len=8
        )
        if arch == "bsarec-causal":
            base.update(arch="bsarec", filter_scope="causal")
        base.update(kw)
        torch.manual_seed(seed)
        net = SequenceRecommender(ModelConfig(**base))  # type: ignore[arg-type]
        # Larger weights than the training init so that every input visibly matters.
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.3 * torch.randn_like(p))
        return net.eval()

    return make


@pytest.fixture
def make_seq() -> MakeSeq:
    """Encoded sequence from item indices (>= 2) and optional event indices (default purchase)."""

    def make(items: list[int], events: list[int] | None = None) -> EncodedSequence:
        ev = events if events is not None else [5] * len(items)
        return EncodedSequence(np.array(items, dtype=np.int64), np.array(ev, dtype=np.int64), None)

    return make


@pytest.fixture(params=["bsarec", "transformer", "lstm", "gru"])
def arch(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["bsarec-causal", "transformer", "lstm", "gru"])
def causal_arch(request: pytest.FixtureRequest) -> str:
    """Encoders whose every position sees only itself and earlier events."""
    return str(request.param)
