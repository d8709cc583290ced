"""Train a sequence model: ``streamrec train --dataset F --out DIR`` (``--arch`` bsarec).

Next-item loss is the full softmax cross-entropy: for causal encoders at every
position of every training window in one pass (the same as every prefix as a
sample), for bsarec's window-scope filter on every prefix as its own sample
(:mod:`models.training.prefixes`); leave-one-out: each user's last two events are
held out. Early
stopping watches validation NDCG@10 of the network alone; afterwards the blend
(transition weight and smoothing, seen demotion) is tuned on the same validation
split (never on test), and DIR receives the checkpoint, ``metrics.json`` and
``curves.png``.

With ``--dp-epsilon`` the network is trained with DP-SGD instead
(:mod:`models.training.privacy`): exactly ``--epochs`` epochs are planned up front (the
accountant calibrates the noise for them), the last epoch's weights are kept
(choosing an epoch on validation would use private data outside the
accountant), and nothing non-private is added: no transition counts, no blend
tuning, no purchase head.

The blend is chosen by validation NDCG@10. HR@10 is nearly flat across the grid
(differences of a few thousandths, i.e. noise), and the network looks better on
validation than on test (it was trained on exactly the validation histories), so
a criterion that rewards a larger transition weight transfers better.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.datasets import load_sequences
from models.evaluation.metrics import RankingMetrics, ranks_under_demotion
from models.evaluation.ranking import ScoreFn, encode_examples, evaluate_ranking
from models.nn.batching import Batch, collate, length_buckets
from models.nn.config import ARCHS, BlendConfig, ModelConfig
from models.nn.event_features import PURCHASE
from models.nn.frequency import POSITIONS, SCOPES
from models.nn.heads import blend, seen_mask
from models.nn.network import SequenceRecommender
from models.nn.predictor import Predictor
from models.nn.transitions import Transitions
from models.nn.vocab import FIRST, ItemVocab
from models.serving import checkpoint
from models.training.data import (
    EncodedSequence,
    Split,
    catalogue_vocab,
    encode,
    file_digest,
    has_events,
    has_time,
    leave_one_out,
)
from models.training.plots import plot_curves
from models.training.prefixes import prefix, prefix_batches, prefix_index
from models.training.privacy import DP_ARCHS, DPConfig, PrivateTrainer, plain_network

# Fine below 1, where validation chose on Beauty and Toys; the smoothing up to 10^4,
# where the transitions fade into popularity.
TRANSITION_GRID = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
SELECT_BY = "NDCG@10"
ALPHA_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
SEEN_GRID = (0.0, 1.0, 3.0, 100.0)  # 100 in log space: never re-recommend the window


@dataclass
class TrainConfig:
    epochs: int = 200
    max_minutes: float = 38.0  # epochs stop here; the blend search (3-5 min) + saving follow
    seed: int = 42
    device: str = "auto"
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64  # users per step, ~440 positions: chosen on validation (see docs)
    prefix_batch_size: int = 256  # prefixes per step (window-scope bsarec), as BSARec
    patience: int = 10
    purchase_loss_weight: float = 0.5
    threads: int | None = None
    dp_epsilon: float | None = None  # set: DP training (models.training.privacy)
    dp_delta: float | None = None  # None: 1 / (10 * training users)
    dp_max_grad_norm: float = 1.0
    dp_physical_batch_size: int = 256


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainingSet:
    inputs: list[EncodedSequence]
    targets: list[np.ndarray]  # next-item columns, aligned with inputs
    target_events: list[np.ndarray]


def training_set(seqs: list[EncodedSequence], max_len: int) -> TrainingSet:
    """Shift each sequence by one: position t predicts event t + 1 (last window only)."""
    out = TrainingSet([], [], [])
    for s in seqs:
        keep = s.items >= FIRST
        n = len(s.items)
        if n < 2:
            continue
        lo = max(0, n - 1 - max_len)
        # Inputs stay whole: collate keeps their last max_len events with true time gaps,
        # exactly as at serving time; targets are cut to line up with that window.
        ts = None if s.ts is None else s.ts[: n - 1]
        out.inputs.append(EncodedSequence(s.items[: n - 1], s.events[: n - 1], ts))
        out.targets.append(np.where(keep[lo + 1 :], s.items[lo + 1 :] - FIRST, -1))
        out.target_events.append(s.events[lo + 1 :])
    return out


def _pad(rows: list[np.ndarray], width: int, fill: int) -> torch.Tensor:
    out = np.full((len(rows), width), fill, dtype=np.int64)
    for r, a in enumerate(rows):
        out[r, : len(a)] = a
    return torch.from_numpy(out)


def _step(
    net: SequenceRecommender,
    opt: torch.optim.Optimizer,
    cfg: TrainConfig,
    h: torch.Tensor,
    targets: torch.Tensor,
    events: torch.Tensor | None,
) -> float:
    """One optimiser step on (N, d) states and their (N,) next-item columns; the loss."""
    loss = net.next_loss(h, targets)
    if events is not None:
        logit = net.purchase_head.target_logits(h, net.item_table, targets)
        bce = F.binary_cross_entropy_with_logits(logit, (events == PURCHASE).float())
        loss = loss + cfg.purchase_loss_weight * bce
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
    opt.step()
    return float(loss.detach())


def train_epoch(
    net: SequenceRecommender,
    data: TrainingSet,
    opt: torch.optim.Optimizer,
    cfg: TrainConfig,
    rng: np.random.Generator,
    device: torch.device,
    desc: str,
) -> float:
    """One pass per sequence, the loss at every position (causal encoders)."""
    net.train()
    mc = net.config
    if mc.arch == "bsarec" and mc.filter_scope == "window":
        return train_prefix_epoch(net, data, opt, cfg, rng, device, desc)
    lengths = [min(len(s.items), mc.max_len) for s in data.inputs]  # padded width per sequence
    batches = list(length_buckets(lengths, cfg.batch_size, rng))
    total, count = 0.0, 0
    bar = tqdm(batches, desc=desc, leave=False, mininterval=1.0 if sys.stderr.isatty() else 30.0)
    for idx in bar:
        batch: Batch = collate([data.inputs[i] for i in idx], mc.max_len, mc.use_time).to(device)
        width = batch.items.shape[1]
        targets = _pad([data.targets[i] for i in idx], width, -1).to(device)
        valid = targets >= 0
        h = net(batch)[valid]  # only real positions: the catalogue-wide logits are the cost
        events = None
        if mc.purchase_trained:
            events = _pad([data.target_events[i] for i in idx], width, 0).to(device)[valid]
        n = int(valid.sum())
        total += _step(net, opt, cfg, h, targets[valid], events) * n
        count += n
        bar.set_postfix(loss=f"{total / max(count, 1):.4f}", refresh=False)
    return total / max(count, 1)


def train_prefix_epoch(
    net: SequenceRecommender,
    data: TrainingSet,
    opt: torch.optim.Optimizer,
    cfg: TrainConfig,
    rng: np.random.Generator,
    device: torch.device,
    desc: str,
) -> float:
    """Every prefix as a sample, the loss at its newest event (window-scope filter)."""
    mc = net.config
    rows, cols, ends = prefix_index(data.inputs, data.targets)
    batches = list(prefix_batches(ends, mc.max_len, cfg.prefix_batch_size, rng))
    total, count = 0.0, 0
    bar = tqdm(batches, desc=desc, leave=False, mininterval=1.0 if sys.stderr.isatty() else 30.0)
    for idx in bar:
        seqs = [prefix(data.inputs[rows[i]], int(ends[i]), mc.max_len) for i in idx]
        batch: Batch = collate(seqs, mc.max_len, mc.use_time).to(device)
        h = net.last_state(net(batch), batch.lengths)
        targets = torch.from_numpy(np.array([data.targets[rows[i]][cols[i]] for i in idx]))
        events = None
        if mc.purchase_trained:
            ev = np.array([data.target_events[rows[i]][cols[i]] for i in idx])
            events = torch.from_numpy(ev).to(device)
        total += _step(net, opt, cfg, h, targets.to(device), events) * len(idx)
        count += len(idx)
        bar.set_postfix(loss=f"{total / max(count, 1):.4f}", refresh=False)
    return total / max(count, 1)


@torch.no_grad()
def tune_blend(
    predictor: Predictor, inputs: list[EncodedSequence], targets: np.ndarray
) -> tuple[BlendConfig, list[dict[str, Any]]]:
    """Grid-search transition weight, smoothing and the seen demotion on validation."""
    net = predictor.network
    cfg = net.config
    if predictor.transitions is None:
        return cfg.blend, []
    pairs = [(w, a) for a in ALPHA_GRID for w in TRANSITION_GRID if w or a == ALPHA_GRID[0]]
    grid = [(w, a, s) for s in SEEN_GRID for w, a in pairs]
    metrics = {g: RankingMetrics() for g in grid}
    net.eval()
    for idx in length_buckets([len(s.items) for s in inputs], 512, rng=None):
        batch = collate([inputs[i] for i in idx], cfg.max_len, cfg.use_time).to(predictor.device)
        h = net.newest_state(batch)
        purchase = net.purchase_logits(h) if cfg.purchase_trained else None
        base = blend(net.next_logits(h), purchase, None, cfg.blend)
        seen = seen_mask(batch.items, base.shape[1])
        t = torch.from_numpy(targets[idx]).to(predictor.device)
        for alpha in ALPHA_GRID:
            tlogp = predictor.transition_logp(batch, alpha)
            assert tlogp is not None
            for w, a in pairs:
                if a == alpha:
                    x = torch.add(base, tlogp, alpha=w) if w else base
                    ranks = ranks_under_demotion(x, t, seen, SEEN_GRID)
                    for s, r in zip(SEEN_GRID, ranks, strict=True):
                        metrics[(w, a, s)].update(r)
    rows = [
        {"transition": w, "transition_alpha": a, "seen": s, **metrics[(w, a, s)].result()}
        for w, a, s in grid
    ]
    best = max(rows, key=lambda r: r[SELECT_BY])
    tuned = BlendConfig(
        cfg.blend.next_item,
        cfg.blend.purchase,
        best["transition"],
        best["transition_alpha"],
        best["seen"],
    )
    return tuned, rows


@dataclass
class Prepared:
    """The dataset, split and encoded for one run."""

    split: Split
    vocab: ItemVocab
    data: TrainingSet
    transitions: Transitions | None  # None under DP: raw counts are not private
    valid_inputs: list[EncodedSequence]
    valid_targets: np.ndarray


@dataclass
class EpochLog:
    history: list[dict[str, Any]]
    best_epoch: int
    stop_reason: str


def prepare_data(dataset: str, model_cfg: ModelConfig, private: bool) -> Prepared:
    """Read, split and encode the file; set the model options the data decides."""
    sequences = load_sequences(dataset)
    split = leave_one_out(sequences)
    vocab = catalogue_vocab(sequences)  # the benchmark ranks against every item in the file
    model_cfg.n_items = len(vocab)
    model_cfg.use_events = has_events(sequences)
    model_cfg.use_time = has_time(sequences)
    train_enc = [encode(s, vocab, model_cfg.use_events) for s in split.train]
    data = training_set(train_enc, model_cfg.max_len)
    labels = np.concatenate(data.target_events) == PURCHASE if data.target_events else np.array([])
    # A purchase head needs both outcomes; benchmark files (all "purchases") have only one.
    model_cfg.purchase_trained = bool(model_cfg.use_events and 0 < labels.mean() < 1)
    transitions: Transitions | None = None
    if private:
        model_cfg.purchase_trained = False  # see models.training.privacy.make_private_network
        model_cfg.blend.transition = 0.0  # raw transition counts are not private
    else:
        transitions = Transitions.fit((s.items for s in train_enc), vocab.n_indices)
    valid_inputs, valid_targets = encode_examples(split.valid, vocab, model_cfg.use_events)
    return Prepared(split, vocab, data, transitions, valid_inputs, valid_targets)


def build_model(
    model_cfg: ModelConfig, cfg: TrainConfig, data: TrainingSet, device: torch.device
) -> tuple[SequenceRecommender, torch.optim.Optimizer, PrivateTrainer | None]:
    """The network and its optimiser; under DP, the network wrapped by its private trainer."""
    net = SequenceRecommender(model_cfg).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.dp_epsilon is None:
        return net, opt, None
    dp = DPConfig(cfg.dp_epsilon, cfg.dp_delta, cfg.dp_max_grad_norm, cfg.dp_physical_batch_size)
    trainer = PrivateTrainer(
        net,
        data.inputs,
        data.targets,
        dp,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        device=device,
    )
    print(
        f"DP-SGD: target epsilon {dp.epsilon} at delta {trainer.delta:.3g}, clip norm "
        f"{dp.max_grad_norm}, noise multiplier {trainer.optimizer.noise_multiplier:.3f}, "
        f"{cfg.epochs} epochs of Poisson batches (expected size "
        f"{trainer.optimizer.expected_batch_size})",
        file=sys.stderr,
    )
    return trainer.network, opt, trainer


def validate(prep: Prepared, model_cfg: ModelConfig, score: ScoreFn) -> dict[str, float]:
    return evaluate_ranking(
        {"model": score},
        prep.valid_inputs,
        prep.valid_targets,
        model_cfg.max_len,
        model_cfg.use_time,
    )["model"]


def run_epochs(
    net: SequenceRecommender,
    opt: torch.optim.Optimizer,
    trainer: PrivateTrainer | None,
    predictor: Predictor,
    prep: Prepared,
    cfg: TrainConfig,
    t_start: float,
) -> EpochLog:
    """Train epoch by epoch until early stop or the time budget; leave ``net`` holding the
    kept epoch's weights (the best on validation, or under DP the last)."""
    rng = np.random.default_rng(cfg.seed)
    log = EpochLog([], 0, "epochs")
    best_score, best_state = -1.0, copy.deepcopy(net.state_dict())
    deadline = t_start + 60.0 * cfg.max_minutes
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.monotonic()
        if trainer is not None:
            loss = trainer.train_epoch(f"epoch {epoch}")
        else:
            loss = train_epoch(net, prep.data, opt, cfg, rng, predictor.device, f"epoch {epoch}")
        valid = validate(prep, net.config, predictor.network_log_probs)
        log.history.append(
            {"epoch": epoch, "train_loss": loss, "valid": valid, "seconds": time.monotonic() - t0}
        )
        print(
            f"epoch {epoch}: loss {loss:.4f} valid HR@10 {valid['HR@10']:.4f} "
            f"NDCG@10 {valid['NDCG@10']:.4f} ({time.monotonic() - t0:.0f}s)",
            file=sys.stderr,
        )
        # DP keeps the last epoch: selecting one on validation would use private data.
        if trainer is not None or valid["NDCG@10"] > best_score:
            best_score, log.best_epoch = valid["NDCG@10"], epoch
            best_state = copy.deepcopy(net.state_dict())
        elif epoch - log.best_epoch >= cfg.patience:
            log.stop_reason = f"early stop: no validation gain for {cfg.patience} epochs"
            break
        per_epoch = (time.monotonic() - t_start) / epoch
        if time.monotonic() + per_epoch > deadline and epoch < cfg.epochs:
            log.stop_reason = f"time budget of {cfg.max_minutes} min"
            if trainer is not None:
                print(
                    f"warning: DP run stopped after {epoch} of {cfg.epochs} planned epochs; "
                    "the noise was calibrated for all of them (less epsilon spent, "
                    "less accuracy): lower --epochs or raise --max-minutes",
                    file=sys.stderr,
                )
            break
    net.load_state_dict(best_state)
    return log


def tune_and_validate(
    predictor: Predictor, prep: Prepared
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Tune the blend on validation, set it on the network, and validate the blended model."""
    tuned, grid = tune_blend(predictor, prep.valid_inputs, prep.valid_targets)
    predictor.network.config.blend = tuned
    return grid, validate(prep, predictor.network.config, predictor.score)


def save_checkpoint(
    out: str,
    dataset: str,
    cfg: TrainConfig,
    net: SequenceRecommender,
    prep: Prepared,
    best_epoch: int,
    privacy: dict[str, Any] | None,
) -> tuple[str, dict[str, Any]]:
    """Write the checkpoint; return its version and the metadata stored with it."""
    meta = {
        "dataset": str(dataset),
        "dataset_sha256_16": file_digest(dataset),
        "train_config": asdict(cfg),
        "best_epoch": best_epoch,
    }
    if privacy is not None:
        meta["privacy"] = privacy
    return checkpoint.save(out, net, prep.vocab, prep.transitions, meta), meta


def train(dataset: str, out: str, model_cfg: ModelConfig, cfg: TrainConfig) -> dict[str, Any]:
    t_start = time.monotonic()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    )
    prep = prepare_data(dataset, model_cfg, private=cfg.dp_epsilon is not None)
    net, opt, trainer = build_model(model_cfg, cfg, prep.data, device)
    predictor = Predictor(net, prep.transitions, device)
    print(
        f"{model_cfg.arch} on {dataset}: {len(prep.split.train)} users, {len(prep.vocab)} items, "
        f"{sum(len(t) for t in prep.data.targets)} training positions, device {device}",
        file=sys.stderr,
    )
    log = run_epochs(net, opt, trainer, predictor, prep, cfg, t_start)
    privacy: dict[str, Any] | None = None
    if trainer is not None:
        privacy = trainer.report(len(log.history))
        net = plain_network(net)  # the ordinary network: what checkpoints and serving hold
        predictor = Predictor(net, None, device)
    grid, valid_blended = tune_and_validate(predictor, prep)
    version, meta = save_checkpoint(out, dataset, cfg, net, prep, log.best_epoch, privacy)
    report = {
        "version": version,
        "dataset": str(dataset),
        "dataset_sha256_16": meta["dataset_sha256_16"],
        "model_config": model_cfg.to_dict(),
        "train_config": asdict(cfg),
        "device": str(device),
        "epochs_run": len(log.history),
        "best_epoch": log.best_epoch,
        "stop_reason": log.stop_reason,
        "valid_network": log.history[log.best_epoch - 1]["valid"] if log.history else {},
        "valid_blended": valid_blended,
        "blend_selected_by": f"validation {SELECT_BY}",
        "blend_grid": grid,
        "history": log.history,
        "total_seconds": time.monotonic() - t_start,
    }
    if privacy is not None:
        report["privacy"] = privacy
    Path(out, "metrics.json").write_text(json.dumps(report, indent=2))
    plot_curves(
        log.history, Path(out, "curves.png"), f"{model_cfg.arch} {Path(dataset).parent.name}"
    )
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="streamrec train", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, help="sequence file (user item item ...)")
    p.add_argument(
        "--arch",
        choices=ARCHS,
        default=None,
        help=f"default {ModelConfig().arch} ({DP_ARCHS[0]} with --dp-epsilon)",
    )
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    d, m = TrainConfig(), ModelConfig()
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--max-minutes", type=float, default=d.max_minutes)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto (CUDA when present), cpu, cuda:0...")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="users per step")
    p.add_argument(
        "--prefix-batch-size",
        type=int,
        default=d.prefix_batch_size,
        help="prefixes per step (bsarec with --filter-scope window)",
    )
    p.add_argument("--patience", type=int, default=d.patience)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--retune-blend",
        action="store_true",
        help="keep the network in --out; search its blend again on validation and rewrite it",
    )
    p.add_argument(
        "--dp-epsilon",
        type=float,
        default=None,
        help="train with DP-SGD (Opacus) to this user-level epsilon; --epochs is then "
        "the exact number of epochs the noise is calibrated for",
    )
    p.add_argument(
        "--dp-delta", type=float, default=None, help="DP delta (default 1 / (10 * training users))"
    )
    p.add_argument(
        "--dp-max-grad-norm", type=float, default=d.dp_max_grad_norm, help="per-user clip norm"
    )
    p.add_argument(
        "--dp-physical-batch-size",
        type=int,
        default=d.dp_physical_batch_size,
        help="users per forward/backward pass under DP (memory cap; --batch-size is the "
        "expected sampled batch)",
    )
    p.add_argument("--dim", type=int, default=m.dim)
    p.add_argument("--layers", type=int, default=m.n_layers)
    p.add_argument("--heads", type=int, default=m.n_heads)
    p.add_argument("--dropout", type=float, default=m.dropout)
    p.add_argument("--max-len", type=int, default=m.max_len)
    p.add_argument("--alpha", type=float, default=m.alpha, help="bsarec: filter vs attention")
    p.add_argument("--cutoff", type=int, default=m.cutoff, help="bsarec: low-pass cut-off c")
    p.add_argument(
        "--positions",
        choices=POSITIONS,
        default=m.positions,
        help="bsarec: absolute position table, or a relative (distance to the query) "
        "attention bias",
    )
    p.add_argument(
        "--filter-scope",
        choices=SCOPES,
        default=m.filter_scope,
        help="bsarec: causal filter (one pass, loss at every position) or the published "
        "filter over the whole window (every prefix a sample)",
    )
    p.add_argument(
        "--purchase-weight",
        type=float,
        default=m.blend.purchase,
        help="blend weight of log P(purchase | item) (used when event types exist)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.retune_blend:
        from models.training.retune import retune_blend

        device = (
            ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
        )
        report = retune_blend(a.dataset, a.out, device)
        print(json.dumps({k: report[k] for k in ("version", "valid_blended")}, indent=2))
        return 0
    arch = a.arch or (DP_ARCHS[0] if a.dp_epsilon is not None else ModelConfig().arch)
    model_cfg = ModelConfig(
        arch=arch,
        dim=a.dim,
        n_layers=a.layers,
        n_heads=a.heads,
        dropout=a.dropout,
        max_len=a.max_len,
        alpha=a.alpha,
        cutoff=a.cutoff,
        positions=a.positions,
        filter_scope=a.filter_scope,
        blend=BlendConfig(purchase=a.purchase_weight),
    )
    cfg = TrainConfig(
        epochs=a.epochs,
        max_minutes=a.max_minutes,
        seed=a.seed,
        device=a.device,
        lr=a.lr,
        weight_decay=a.weight_decay,
        batch_size=a.batch_size,
        prefix_batch_size=a.prefix_batch_size,
        patience=a.patience,
        threads=a.threads,
        dp_epsilon=a.dp_epsilon,
        dp_delta=a.dp_delta,
        dp_max_grad_norm=a.dp_max_grad_norm,
        dp_physical_batch_size=a.dp_physical_batch_size,
    )
    report = train(a.dataset, a.out, model_cfg, cfg)
    print(
        json.dumps(
            {
                k: report[k]
                for k in (
                    "version",
                    "best_epoch",
                    "stop_reason",
                    "valid_network",
                    "valid_blended",
                    "privacy",
                )
                if k in report
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
