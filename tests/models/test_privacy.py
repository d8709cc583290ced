"""Differentially private training (``train --dp-epsilon``, models/training/privacy.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from opacus import GradSampleModule

from models.base import Interaction
from models.serving import checkpoint
from models.serving.scorer import NeuralScorer
from models.training import train
from models.training.privacy import DPConfig, PrivateTrainer, make_private_network, user_mean_loss
from models.training.train import training_set

MakeNetwork = MakeSeq = Callable[..., Any]  # the factories of tests/models/conftest.py
CPU = torch.device("cpu")


def _histories(make_seq: MakeSeq, n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [make_seq(rng.integers(2, 32, size=int(rng.integers(3, 12))).tolist()) for _ in range(n)]


@pytest.mark.parametrize("arch", ["transformer", "lstm", "gru"])
def test_per_user_gradients_match_autograd(
    arch: str, make_network: MakeNetwork, make_seq: MakeSeq
) -> None:
    """Opacus's per-user gradients (stock hooks, DPLSTM/DPGRU, our tied-table sampler)
    equal each user's own gradient computed by plain autograd, parameter by parameter."""
    net = make_network(arch, dropout=0.0)
    data = training_set(_histories(make_seq, 5), net.config.max_len)
    hooked = make_private_network(net).train()
    model = GradSampleModule(hooked)
    loss, _ = user_mean_loss(model, hooked, data.inputs, data.targets, CPU)
    loss.backward()
    for user in range(len(data.inputs)):
        alone = make_private_network(net).train()
        one, _ = user_mean_loss(alone, alone, data.inputs[user : user + 1],
                                data.targets[user : user + 1], CPU)  # fmt: skip
        one.backward()
        trained = [(n, p) for n, p in hooked.named_parameters() if p.requires_grad]
        reference = [p for _, p in alone.named_parameters() if p.requires_grad]
        assert len(trained) == len(reference)
        for (name, p), q in zip(trained, reference, strict=True):
            assert q.grad is not None, name
            torch.testing.assert_close(p.grad_sample[user], q.grad, rtol=1e-4, atol=1e-6)


def test_item_table_gradient_includes_the_tied_head(
    make_network: MakeNetwork, make_seq: MakeSeq
) -> None:
    """Catalogue rows a user never saw still get a gradient: it can only come from the head."""
    net = make_network("transformer", dropout=0.0)
    data = training_set([make_seq([2, 3, 4, 5])], net.config.max_len)
    hooked = make_private_network(net).train()
    model = GradSampleModule(hooked)
    loss, _ = user_mean_loss(model, hooked, data.inputs, data.targets, CPU)
    loss.backward()
    table = hooked.embed.items.weight.grad_sample[0]
    assert table[20].abs().sum() > 0  # item index 20 is not in this history
    assert table[:2].abs().sum() == 0  # padding and unknown rows are never scored


def test_one_step_clips_each_user_and_adds_calibrated_noise(
    make_network: MakeNetwork, make_seq: MakeSeq
) -> None:
    net = make_network("transformer", dropout=0.0)
    data = training_set(_histories(make_seq, 40), net.config.max_len)
    clip = 1e-3  # far below every user's gradient norm, so every user is clipped
    trainer = PrivateTrainer(net, data.inputs, data.targets,
                             DPConfig(epsilon=2.0, max_grad_norm=clip), epochs=1,
                             batch_size=len(data.inputs), lr=1e-3, weight_decay=0.0, seed=0,
                             device=CPU)  # fmt: skip
    opt = trainer.optimizer
    sigma = opt.noise_multiplier
    assert sigma > 0
    loss, _ = user_mean_loss(trainer.model, trainer.network, data.inputs, data.targets, CPU)
    loss.backward()
    per_user = torch.stack([p.grad_sample.flatten(1).norm(dim=1) for p in opt.params]).norm(dim=0)
    assert (per_user > 10 * clip).all()
    opt.pre_step()  # clip, sum, add noise, scale: everything but the parameter update
    summed = torch.cat([p.summed_grad.flatten() for p in opt.params])
    assert summed.norm() <= len(data.inputs) * clip * (1 + 1e-4)
    noise = torch.cat(
        [(p.grad * opt.expected_batch_size - p.summed_grad).flatten() for p in opt.params]
    )
    assert noise.std().item() == pytest.approx(sigma * clip, rel=0.1)


def _synthetic_file(tmp_path: Path, n_users: int = 120) -> Path:
    """Users walk a ring of 30 items (i -> i + 1), so there is something to learn."""
    rng = np.random.default_rng(3)
    lines = []
    for u in range(n_users):
        start, length = int(rng.integers(0, 30)), int(rng.integers(4, 9))
        lines.append(" ".join([f"u{u}", *(f"i{(start + k) % 30}" for k in range(length))]))
    path = tmp_path / "ring.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("arch", ["transformer", pytest.param("lstm", marks=pytest.mark.slow)])
def test_dp_run_spends_at_most_its_budget_and_serves(arch: str, tmp_path: Path) -> None:
    data, out = _synthetic_file(tmp_path), tmp_path / arch
    args = ["--dataset", str(data), "--arch", arch, "--out", str(out), "--epochs", "2",
            "--dim", "16", "--layers", "1", "--max-len", "10", "--batch-size", "32",
            "--threads", "1", "--dp-epsilon", "2", "--dp-max-grad-norm", "0.5",
            "--dp-physical-batch-size", "16"]  # fmt: skip
    assert train.main(args) == 0
    privacy = json.loads((out / "metrics.json").read_text())["privacy"]
    assert 0 < privacy["epsilon_spent"] <= 2.0
    assert privacy["noise_multiplier"] > 0
    assert privacy["max_grad_norm"] == 0.5
    assert privacy["training_users"] == 120
    assert privacy["delta"] == pytest.approx(1 / 1200)
    assert privacy["epochs_run"] == privacy["planned_epochs"] == 2
    assert json.loads((out / "meta.json").read_text())["privacy"] == privacy
    # Nothing non-private travels with the weights.
    assert not (out / "transitions.npz").exists()
    ckpt = checkpoint.load(out)
    assert ckpt.transitions is None and ckpt.network.config.blend.transition == 0.0
    # The serving pass loads and scores the DP checkpoint like any other.
    scorer = NeuralScorer.load(out, device="cpu")
    history = [Interaction("i3", "purchase", 0), Interaction("i4", "purchase", 0)]
    [scored] = scorer.score([history], k=5)
    assert len(scored.items) == 5
    assert all(np.isfinite(score) for _, score in scored.items)
