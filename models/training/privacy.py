"""Differentially private training (DP-SGD) with Opacus: user-level privacy.

One training row per user (the last window of their history), so clipping each
row's gradient bounds what any single user can change: the guarantee is
user-level (ε, δ)-DP for the network's weights, with Poisson sampling of users
(Opacus ``DPDataLoader``), per-user gradient clipping to ``max_grad_norm``,
Gaussian noise calibrated by Opacus's RDP accountant for a fixed number of
epochs.

What Opacus needs from our network:

* Per-sample gradients come from layer hooks. ``Linear``, ``LayerNorm`` and
  ``Embedding`` have them; the Transformer's attention is two ``Linear`` layers
  around the parameter-free ``scaled_dot_product_attention``, so it needs no
  ``DPMultiheadAttention`` swap. ``nn.LSTM`` / ``nn.GRU`` have none and are swapped
  for Opacus's ``DPLSTM`` / ``DPGRU`` (same state_dict keys, so checkpoints stay
  plain ``SequenceRecommender`` checkpoints).
* The next-item head reuses the item embedding table (weight tying), which no
  stock hook sees. :class:`DPNextItemHead` registers its own per-sample gradient
  for the bias and for the tied table; Opacus adds the table's two contributions
  (head and embedding) before clipping, so each user's full gradient is clipped.
* The head runs on each user's real positions only and its last input is the
  (B, L) mask, so Opacus reads the batch size (users, not positions) from it.
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from opacus import PrivacyEngine
from opacus.grad_sample import register_grad_sampler
from opacus.layers import DPGRU, DPLSTM
from opacus.utils.batch_memory_manager import BatchMemoryManager
from opacus.validators import ModuleValidator
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from models.nn.batching import collate
from models.nn.heads import NextItemHead
from models.nn.lstm import RNNEncoder
from models.nn.network import SequenceRecommender
from models.nn.vocab import FIRST
from models.training.data import EncodedSequence

DP_ARCHS = ("transformer", "lstm", "gru")


@dataclass
class DPConfig:
    """Privacy target of one training run (``streamrec train --dp-epsilon``)."""

    epsilon: float
    delta: float | None = None  # None: 1 / (10 N), N = training users
    max_grad_norm: float = 1.0  # per-user clipping norm C
    physical_batch_size: int = 256  # memory cap; the logical (sampled) batch is --batch-size


def default_delta(n_users: int) -> float:
    """δ well below 1/N: the usual requirement so that (ε, δ) cannot leak one whole user."""
    return 1.0 / (10 * n_users)


class DPNextItemHead(NextItemHead):
    tied_table: nn.Parameter

    """:class:`NextItemHead` that can also score the real positions of a (B, L, d) batch.

    ``forward(h, table)`` is the ordinary head (evaluation, serving);
    ``forward(h, table, valid)`` returns logits for ``h[valid]`` only, (N_real, n_items),
    which keeps padding out of the catalogue-wide matrix product.
    """

    def forward(
        self, h: torch.Tensor, item_table: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        if valid is None:
            return super().forward(h, item_table)
        return F.linear(h[valid], item_table[FIRST:], self.bias)


@register_grad_sampler(DPNextItemHead)
def _next_item_grad_sample(
    layer: DPNextItemHead, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    """Per-user gradients of the bias and of the tied item table.

    ``backprops`` are d loss / d logits for the real positions, row-major by user,
    so user i owns the next ``valid[i].sum()`` rows; its table gradient is
    ``backprops_i^T @ h_i`` on the catalogue rows (padding/unknown rows get none).
    """
    h, table, valid = activations
    n_users = valid.shape[0]
    counts = valid.sum(1).tolist()
    hs = h[valid].split(counts)
    gs = backprops.split(counts)
    bias = backprops.new_zeros(n_users, *layer.bias.shape)
    # (users, catalogue, dim) is the largest tensor of a DP step: fill it once, not twice.
    grad = backprops.new_empty(n_users, *table.shape)
    grad[:, :FIRST] = 0.0
    for i, (g, x) in enumerate(zip(gs, hs, strict=True)):
        if len(g):
            bias[i] = g.sum(0)
            torch.mm(g.t(), x, out=grad[i, FIRST:])
        else:
            grad[i].zero_()
    return {layer.bias: bias, layer.tied_table: grad}


def _swap_rnn(encoder: RNNEncoder) -> None:
    old = encoder.rnn
    cls = DPLSTM if isinstance(old, nn.LSTM) else DPGRU
    new = cls(
        old.input_size,
        old.hidden_size,
        num_layers=old.num_layers,
        batch_first=True,
        dropout=old.dropout,
    )
    new.load_state_dict(old.state_dict())  # DPLSTM/DPGRU keep nn.LSTM/nn.GRU's key names
    encoder.rnn = new


def make_private_network(net: SequenceRecommender) -> SequenceRecommender:
    """A copy of ``net`` whose every trainable layer has Opacus per-sample gradients.

    The purchase head is frozen: its loss scores one target column through a method
    call the hooks cannot see, so DP training trains the next-item head only.
    """
    if net.config.arch not in DP_ARCHS:
        # The filter's beta scales whole positions; no Opacus hook computes its per-user gradient.
        raise ValueError(f"DP training supports {DP_ARCHS}, not {net.config.arch!r}")
    dp = copy.deepcopy(net).train()
    head = DPNextItemHead(dp.config.n_items)
    head.load_state_dict(dp.next_head.state_dict())
    # Which parameter the head's second input is; set past nn.Module so that it is not
    # registered (and saved) a second time as a parameter of the head.
    object.__setattr__(head, "tied_table", dp.embed.items.weight)
    dp.next_head = head
    dp.purchase_head.requires_grad_(False)
    if isinstance(dp.encoder, RNNEncoder):
        _swap_rnn(dp.encoder)
    errors = ModuleValidator.validate(dp, strict=False)
    if errors:
        raise ValueError(f"network is not Opacus-compatible: {errors}")
    return dp


def plain_network(dp: SequenceRecommender) -> SequenceRecommender:
    """The ordinary network with ``dp``'s weights (what the checkpoint and serving load)."""
    net = SequenceRecommender(dp.config)
    state = dp.state_dict()
    # DPLSTM/DPGRU also list their weights under their submodules' names; keep ours.
    net.load_state_dict({k: state[k] for k in net.state_dict()})
    return net


class _UserIndex(Dataset[tuple[torch.Tensor]]):
    """Row i of the training set as a 1-tuple (Opacus learns empty-batch shapes from it)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor]:
        return (torch.tensor(i),)


def _pad(rows: list[np.ndarray], width: int) -> torch.Tensor:
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for r, a in enumerate(rows):
        out[r, : len(a)] = a
    return torch.from_numpy(out)


def user_mean_loss(
    model: nn.Module,
    net: SequenceRecommender,
    inputs: Sequence[EncodedSequence],
    targets: Sequence[np.ndarray],
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over users of each user's mean next-item cross-entropy, and the per-position terms.

    ``model`` is ``net`` or its Opacus wrapper; ``net`` must come from
    :func:`make_private_network`. Averaging within a user first keeps a user's
    gradient (clipped as a whole) from growing with their history length; averaging
    over users matches Opacus's ``loss_reduction="mean"``.
    """
    mc = net.config
    batch = collate(list(inputs), mc.max_len, mc.use_time).to(device)
    target = _pad(list(targets), batch.items.shape[1]).to(device)
    valid = target >= 0
    logits = net.next_head(model(batch), net.item_table, valid)
    ce = F.cross_entropy(logits, target[valid], reduction="none")
    per_user = valid.sum(1).clamp(min=1).float()
    weight = 1.0 / per_user[valid.nonzero()[:, 0]]
    return (ce * weight).sum() / len(inputs), ce.detach()


class PrivateTrainer:
    """DP-SGD (Adam variant) on one row per user, set up by ``make_private_with_epsilon``.

    The noise multiplier is calibrated so that exactly ``epochs`` passes of Poisson
    sampled batches (expected size ``batch_size``) spend ``dp.epsilon`` at ``δ``;
    stopping earlier spends less, reported by :meth:`report`.
    """

    def __init__(
        self,
        net: SequenceRecommender,
        inputs: Sequence[EncodedSequence],
        targets: Sequence[np.ndarray],
        dp: DPConfig,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        weight_decay: float,
        seed: int,
        device: torch.device,
    ) -> None:
        self.inputs, self.targets, self.dp = inputs, targets, dp
        self.network = make_private_network(net).to(device)
        self.device = device
        self.delta = dp.delta if dp.delta is not None else default_delta(len(inputs))
        params = [p for p in self.network.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        loader = DataLoader(
            _UserIndex(len(inputs)),
            batch_size=batch_size,
            generator=torch.Generator().manual_seed(seed),
        )
        self.engine = PrivacyEngine(accountant="rdp")
        self.model, self.optimizer, self.loader = self.engine.make_private_with_epsilon(
            module=self.network,
            optimizer=opt,
            data_loader=loader,
            target_epsilon=dp.epsilon,
            target_delta=self.delta,
            epochs=epochs,
            max_grad_norm=dp.max_grad_norm,
            poisson_sampling=True,
        )
        self.planned_epochs = epochs
        self.batch_size = batch_size

    def _empty_step(self) -> None:
        """An empty Poisson batch still takes a (pure-noise) step, as the accountant assumes."""
        for p in self.optimizer.params:
            p.grad_sample = p.new_zeros(0, *p.shape)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def train_epoch(self, desc: str) -> float:
        """One pass of Poisson-sampled batches; returns the mean next-item loss per position."""
        net = self.network
        self.model.train()
        total, count = 0.0, 0
        with (
            warnings.catch_warnings(),
            BatchMemoryManager(
                data_loader=self.loader,
                max_physical_batch_size=self.dp.physical_batch_size,
                optimizer=self.optimizer,
            ) as batches,
        ):
            # Embedding inputs are indices, so torch notes that their hooks see no input
            # gradient; that is expected (Opacus only needs the output gradient).
            warnings.filterwarnings("ignore", "Full backward hook is firing")
            every = 1.0 if sys.stderr.isatty() else 30.0
            bar = tqdm(batches, desc=desc, leave=False, mininterval=every)
            for (rows,) in bar:
                idx = rows.tolist()
                if not idx:
                    self._empty_step()
                    continue
                loss, ce = user_mean_loss(
                    self.model,
                    net,
                    [self.inputs[i] for i in idx],
                    [self.targets[i] for i in idx],
                    self.device,
                )
                loss.backward()
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                total += float(ce.sum())
                count += len(ce)
                bar.set_postfix(loss=f"{total / max(count, 1):.4f}", refresh=False)
        return total / max(count, 1)

    def report(self, epochs_run: int) -> dict[str, Any]:
        """What was promised and what was spent, for ``metrics.json`` and the checkpoint."""
        return {
            "target_epsilon": self.dp.epsilon,
            "epsilon_spent": float(self.engine.get_epsilon(self.delta)),
            "delta": self.delta,
            "max_grad_norm": self.dp.max_grad_norm,
            "noise_multiplier": float(self.optimizer.noise_multiplier),
            "sample_rate": float(self.loader.sample_rate),
            "expected_batch_size": self.optimizer.expected_batch_size,
            "physical_batch_size": self.dp.physical_batch_size,
            "training_users": len(self.inputs),
            "planned_epochs": self.planned_epochs,
            "epochs_run": epochs_run,
            "accountant": "rdp",
            "unit": "user (one training row per user)",
            "opacus": _opacus_version(),
        }


def _opacus_version() -> str:
    from opacus import __version__

    return str(__version__)
