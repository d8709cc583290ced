"""Versioned checkpoints and the atomic swap of the model directory."""

from __future__ import annotations

import os
from pathlib import Path

from models.nn.config import ModelConfig
from models.nn.network import SequenceRecommender
from models.nn.vocab import ItemVocab
from models.serving import checkpoint
from stream_app.settings import Settings
from stream_app.trainer import publish


def _save(out: Path, seed: int) -> str:
    import torch

    torch.manual_seed(seed)
    net = SequenceRecommender(ModelConfig(arch="gru", n_items=3, dim=4, n_layers=1))
    return publish.write(out, net, ItemVocab("abc"), None, {"trainer": {"seed": seed}})


def test_promotion_turns_the_directory_into_a_link_and_keeps_the_served_version(
    tmp_path: Path,
) -> None:
    model_dir = tmp_path / "current"
    settings = Settings(model_dir=model_dir, trainer_keep=2)
    versions = publish.versions_dir(settings)
    assert versions == tmp_path / "current.versions"
    first = _save(tmp_path / "staging", 0)
    os.replace(tmp_path / "staging" / first, model_dir)  # a plain directory, as `train` writes
    second = _save(versions, 1)
    publish.promote(settings, second)
    assert model_dir.is_symlink() and publish.current_version(model_dir) == second
    assert (versions / first / "model.pt").exists()  # the old one moved beside it
    assert checkpoint.load(model_dir).version == second
    assert (model_dir / "report.json").read_text().strip().startswith("{")
    for seed in (2, 3, 4):
        publish.promote(settings, _save(versions, seed))
    kept = sorted(d.name for d in versions.iterdir() if not d.name.startswith("."))
    assert len(kept) == 2 and publish.current_version(model_dir) in kept
    assert not list(versions.glob(".writing-*"))


def test_the_anchor_is_the_oldest_ancestor_still_kept(tmp_path: Path) -> None:
    import torch

    settings = Settings(model_dir=tmp_path / "current", trainer_keep=3)
    versions = publish.versions_dir(settings)
    chain: list[str] = []
    for seed in range(5):
        torch.manual_seed(seed)
        net = SequenceRecommender(ModelConfig(arch="gru", n_items=3, dim=4, n_layers=1))
        meta = {"parent": chain[-1] if chain else None}
        chain.append(publish.write(versions, net, ItemVocab("abc"), None, meta))
        publish.promote(settings, chain[-1])
    served = checkpoint.load(settings.model_dir)  # type: ignore[arg-type]
    assert served.version == chain[-1]
    assert publish.oldest_ancestor(settings, served.meta) == chain[-3]  # 3 kept: 2 back
    assert publish.oldest_ancestor(settings, {"parent": None}) is None
