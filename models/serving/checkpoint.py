"""Checkpoint directory: weights, config, item vocabulary, transitions and a version id.

Layout::

    DIR/model.pt          state_dict of the network
    DIR/config.json       ModelConfig (architecture, sizes, blend weights)
    DIR/vocab.json        item ids in column order
    DIR/transitions.npz   Markov-1 counts used by the blend (optional)
    DIR/meta.json         version id, dataset name and digest, creation time

The version id hashes weights and config, so two checkpoints share a version
only if they score identically.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.nn.config import ModelConfig
from models.nn.network import SequenceRecommender
from models.nn.transitions import Transitions
from models.nn.vocab import ItemVocab


@dataclass
class Checkpoint:
    network: SequenceRecommender
    vocab: ItemVocab
    transitions: Transitions | None
    meta: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.meta["version"])


def version_id(network: SequenceRecommender) -> str:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, buf)
    h = hashlib.sha256(buf.getvalue())
    h.update(json.dumps(network.config.to_dict(), sort_keys=True).encode())
    return f"{network.config.arch}-{h.hexdigest()[:12]}"


def save(
    directory: str | Path,
    network: SequenceRecommender,
    vocab: ItemVocab,
    transitions: Transitions | None,
    extra_meta: dict[str, Any] | None = None,
) -> str:
    """Write the checkpoint and return its version id."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
    torch.save(state, d / "model.pt")
    (d / "config.json").write_text(json.dumps(network.config.to_dict(), indent=2))
    (d / "vocab.json").write_text(json.dumps(vocab.to_list()))
    if transitions is not None:
        transitions.save(d / "transitions.npz")
    version = version_id(network)
    meta = {"version": version, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    meta.update(extra_meta or {})
    (d / "meta.json").write_text(json.dumps(meta, indent=2))
    return version


def load(directory: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    # Resolved once: when the directory is a symlink repointed during the load, every
    # file still comes from the one version it pointed at first.
    d = Path(directory).resolve()
    config = ModelConfig.from_dict(json.loads((d / "config.json").read_text()))
    network = SequenceRecommender(config)
    network.load_state_dict(torch.load(d / "model.pt", map_location="cpu", weights_only=True))
    network.to(device).eval()
    vocab = ItemVocab(json.loads((d / "vocab.json").read_text()))
    if len(vocab) != config.n_items:
        raise ValueError(f"vocab has {len(vocab)} items, config says {config.n_items}")
    tpath = d / "transitions.npz"
    transitions = Transitions.load(tpath) if tpath.exists() else None
    meta = json.loads((d / "meta.json").read_text())
    return Checkpoint(network, vocab, transitions, meta)
