"""Served-pass precision: CPU time per history and test quality, per ``STREAMREC_SERVE_PRECISION``.

- speed: ``NeuralScorer.score`` on real Beauty histories (each user's events but the
  last) in calls of ``--batches`` histories, one torch thread, CPU time of this
  process per history; the modes take turns within each repetition, and the
  medians over ``--reps`` are reported. Influences on (the default) and off.
- quality: the served pass itself (:class:`models.serving.fused_pass.ServingPass`)
  on every test user of the leave-one-out split, with the transitions that
  ``streamrec evaluate`` blends for its model row (every event before the test
  target); the target's rank is its place in the served top-20 (a miss beyond).
  The fp32 row is checked against ``evaluate``'s own full ranking of the same
  users (``reference``). The encoder is float32 in every mode, so influences on
  or off rank alike: they are off here.

    nice -n 19 python -m scripts.bench_serve_precision \
        --model-dir /work/artifacts/exp-s4/beauty-defaults --json results/serve_precision.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.datasets import load_sequences
from models.evaluation.metrics import RankingMetrics
from models.evaluation.ranking import encode_examples, evaluate_ranking
from models.nn.batching import collate, length_buckets
from models.nn.predictor import Predictor
from models.nn.transitions import Transitions
from models.serving import checkpoint
from models.serving.fused_pass import ServingPass
from models.serving.precision import PRECISIONS
from models.serving.scorer import NeuralScorer
from models.training.data import leave_one_out
from scripts.bench_batcher import DATASET, histories

TOP = 20  # the served list scored for HR / NDCG at 5, 10 and 20


def speed(args: argparse.Namespace) -> dict[str, Any]:
    """Median CPU ms per history, per mode, influence setting and batch size."""
    hist = histories(Path(args.dataset), args.histories, seed=0)
    scorers = {p: NeuralScorer.load(args.model_dir, "cpu", precision=p) for p in args.modes}
    samples: dict[str, list[float]] = {}
    for rep in range(args.reps):
        order = args.modes[rep % len(args.modes) :] + args.modes[: rep % len(args.modes)]
        for mode in order:
            scorer = scorers[mode]
            for influence in ("grad_x_input", "none"):
                scorer.influence_method = influence
                for size in args.batches:
                    scorer.score(hist[:size], 10)  # warm the shapes
                    t0 = time.process_time()
                    for i in range(0, len(hist), size):
                        scorer.score(hist[i : i + size], 10)
                    ms = (time.process_time() - t0) * 1e3 / len(hist)
                    samples.setdefault(f"{mode} {influence} {size}", []).append(ms)
        print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)
    return {key: {"median_ms": statistics.median(v), "runs_ms": v} for key, v in samples.items()}


def served_ranks(serving: ServingPass, batch: Any, targets: torch.Tensor) -> Any:
    """0-based rank of each target in the served top list; ``n_items`` when not in it."""
    top = serving.run(batch, TOP, influences=False).top_cols
    hit = top == targets.unsqueeze(1)
    n = serving.predictor.network.config.n_items
    place = torch.where(hit, torch.arange(TOP).expand_as(top), torch.full_like(top, n))
    return place.min(dim=1).values


def quality(args: argparse.Namespace) -> dict[str, Any]:
    """HR / NDCG at 5, 10, 20 of the served blend on every test user, per mode."""
    ckpt = checkpoint.load(args.model_dir, "cpu")
    net = ckpt.network.eval().requires_grad_(False)
    cfg = net.config
    split = leave_one_out(load_sequences(args.dataset))
    inputs, targets = encode_examples(split.test, ckpt.vocab, cfg.use_events)
    observed = Transitions.fit((s.items for s in inputs), ckpt.vocab.n_indices)
    predictor = Predictor(net, observed, torch.device("cpu"))
    passes = {p: ServingPass(predictor, p) for p in args.modes}
    metrics = {p: RankingMetrics() for p in args.modes}
    lengths = [len(s.items) for s in inputs]
    for idx in length_buckets(lengths, 512, rng=None):
        batch = collate([inputs[i] for i in idx], cfg.max_len, cfg.use_time)
        t = torch.from_numpy(targets[idx])
        for mode, serving in passes.items():
            metrics[mode].update(served_ranks(serving, batch, t))
    # MRR needs every rank, not only the top 20.
    out: dict[str, Any] = {
        mode: {k: v for k, v in m.result().items() if k != "MRR"} for mode, m in metrics.items()
    }
    ref = evaluate_ranking({"model": predictor.score}, inputs, targets, cfg.max_len, cfg.use_time)
    out["reference"] = ref["model"]
    return out


def relative(quality_rows: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Relative change of HR@10 and NDCG@10 of every mode against fp32."""
    base = quality_rows["fp32"]
    return {
        mode: {k: row[k] / base[k] - 1.0 for k in ("HR@10", "NDCG@10")}
        for mode, row in quality_rows.items()
        if mode != "reference"
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--dataset", default=str(DATASET))
    ap.add_argument("--modes", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    ap.add_argument("--batches", nargs="+", type=int, default=[8, 26, 64])
    ap.add_argument("--histories", type=int, default=1600)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--skip", choices=("speed", "quality"), default=None)
    ap.add_argument("--json", default="results/serve_precision.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    np.random.seed(0)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    report: dict[str, Any] = {
        "command": "python -m scripts.bench_serve_precision " + " ".join(argv or sys.argv[1:]),
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if args.skip != "quality":
        report["quality"] = quality(args)
        report["relative_to_fp32"] = relative(report["quality"])
        print(json.dumps(report["relative_to_fp32"], indent=1))
    if args.skip != "speed":
        report["speed"] = speed(args)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    for key, row in report.get("speed", {}).items():
        print(f"{key}: {row['median_ms']:.3f} ms/history")
    for key, row in report.get("quality", {}).items():
        print(f"{key}: HR@10 {row['HR@10']:.4f} NDCG@10 {row['NDCG@10']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
