"""Micro-batcher benchmark: sequences/s and latency, unbatched vs dynamic batching, in one run.

Serves a trained checkpoint (default: the BSARec-style model trained on Beauty) on real
Beauty histories, exactly as the worker does: ``NeuralScorer.score`` (top-k over the
full catalogue plus grad x input influences) behind :class:`models.serving.microbatch.MicroBatcher`.

- ``direct``: the scorer called in a plain loop at fixed batch sizes (no batcher):
  the throughput curve of the model itself, next to its FLOP count and this CPU's
  measured matmul speed (the floor).
- ``unbatched``: the batcher with ``max_batch_size=1``; ``concurrency`` callers.
- ``dynamic``: the batcher at several (max_batch_size, max_delay_ms) settings and
  concurrency levels. Each caller submits, awaits its answer, and submits again
  (closed loop), so latency includes queueing.

Writes ``results/bench_batcher.json`` and ``results/bench_batcher.png``.

    .venv/bin/python scripts/bench_batcher.py --model-dir runs/beauty-bsarec \
        --baseline-dir runs/beauty-transformer

``--baseline-dir`` measures a second checkpoint the same way, under ``baseline``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from models.base import Interaction
from models.datasets import load_sequences
from models.serving.microbatch import MicroBatcher
from models.serving.scorer import NeuralScorer

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared/datasets/amazon-beauty/sequences.txt"
SETTINGS = [(8, 2.0), (32, 5.0), (64, 5.0), (128, 10.0), (256, 20.0)]
CONCURRENCY = [1, 16, 64, 256]


def histories(path: Path, n: int, seed: int) -> list[list[Interaction]]:
    """Real histories: each user's events but the last, as the worker would hold them."""
    seqs = [s for s in load_sequences(path) if len(s) >= 2]
    random.Random(seed).shuffle(seqs)
    return [s.head(-1).interactions() for s in seqs[:n]]


def flops_per_sequence(scorer: NeuralScorer, width: int) -> dict[str, float]:
    """Multiply-adds of one served sequence at a bucket width (forward, and input-grad backward)."""
    cfg = scorer.config
    d, n_items = cfg.dim, cfg.n_items
    if cfg.arch in ("transformer", "bsarec"):
        # per layer and position: qkv 3d^2 + out d^2 + ffn 8d^2; attention QK^T and AV: 2 L d
        encoder = cfg.n_layers * width * (12 * d * d + 2 * width * d)
        if cfg.arch == "bsarec" and cfg.alpha:
            encoder += cfg.n_layers * width * width * d  # the causal low-pass filter
    else:
        gates = 4 if cfg.arch == "lstm" else 3
        encoder = cfg.n_layers * width * gates * 2 * d * d
    catalogue = n_items * d  # only the last position is scored
    forward = encoder + catalogue
    # grad x input: each matmul needs one more product for the input gradient, none for weights
    backward = forward if scorer.influence_method == "grad_x_input" else 0
    return {"width": width, "macs_forward": forward, "macs_total": forward + backward}


def matmul_gflops(seconds: float = 1.0) -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    torch.mm(a, b)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - start) / 1e9


def direct(scorer: NeuralScorer, data: list[list[Interaction]], bs: int, seconds: float) -> float:
    rng = random.Random(bs)
    scorer.score(data[:bs], 10)  # warm-up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        i = rng.randrange(len(data) - bs)
        scorer.score(data[i : i + bs], 10)
        n += bs
    return n / (time.perf_counter() - start)


async def closed_loop(
    scorer: NeuralScorer,
    data: list[list[Interaction]],
    max_batch_size: int,
    max_delay_ms: float,
    concurrency: int,
    seconds: float,
    threads: int,
) -> dict[str, Any]:
    sizes: list[int] = []

    class Sizes:
        def on_batch(self, size: int, queue_waits: Any, inference_s: float) -> None:
            sizes.append(size)

        def on_depth(self, depth: int) -> None:
            pass

    batcher: MicroBatcher[list[Interaction], Any] = MicroBatcher(
        lambda hs: scorer.score(hs, 10),
        max_batch_size=max_batch_size,
        max_delay_ms=max_delay_ms,
        max_queue=4096,
        observer=Sizes(),
        thread_init=lambda: torch.set_num_threads(threads),
    )
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    warm = time.perf_counter() + min(1.0, seconds / 4)

    async def caller(seed: int) -> None:
        rng = random.Random(seed)
        while (now := time.perf_counter()) < stop:
            await batcher.submit(data[rng.randrange(len(data))])
            if now >= warm:
                latencies.append(time.perf_counter() - now)

    async with batcher:
        await asyncio.gather(*(caller(i) for i in range(concurrency)))
    lat = np.array(latencies) * 1000
    measured = seconds - min(1.0, seconds / 4)
    return {
        "max_batch_size": max_batch_size,
        "max_delay_ms": max_delay_ms,
        "concurrency": concurrency,
        "sequences_per_s": len(latencies) / measured,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "mean_batch": float(np.mean(sizes)) if sizes else 0.0,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_d, ax_b) = plt.subplots(1, 2, figsize=(12, 4.5))
    d = result["direct"]
    ax_d.plot([r["batch_size"] for r in d], [r["sequences_per_s"] for r in d], marker="o")
    ax_d.axhline(
        result["floor"]["sequences_per_s_at_median_width"],
        ls="--",
        c="grey",
        label="FLOP floor (median width)",
    )
    ax_d.set(
        xscale="log", xlabel="batch size", ylabel="sequences/s", title="scorer alone (no batcher)"
    )
    ax_d.legend()
    runs = result["unbatched"] + result["dynamic"]
    for label, group in (("unbatched", result["unbatched"]), ("dynamic", result["dynamic"])):
        ax_b.scatter(
            [r["p99_ms"] for r in group], [r["sequences_per_s"] for r in group], label=label
        )
    for r in runs:
        ax_b.annotate(
            f"{r['max_batch_size']}/{r['max_delay_ms']:g}/c{r['concurrency']}",
            (r["p99_ms"], r["sequences_per_s"]),
            fontsize=6,
        )
    ax_b.axvline(50, ls="--", c="grey", label="p99 goal 50 ms")
    ax_b.set(
        xscale="log",
        xlabel="p99 latency (ms)",
        ylabel="sequences/s",
        title="through the batcher (batch/delay ms/concurrency)",
    )
    ax_b.legend()
    fig.suptitle(f"{result['model']['name']} {result['model']['version']} on {result['device']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def headline(result: dict[str, Any], p99_goal_ms: float) -> dict[str, Any]:
    best_unbatched = max(result["unbatched"], key=lambda r: r["sequences_per_s"])
    ok = [r for r in result["dynamic"] if r["p99_ms"] <= p99_goal_ms]
    best = max(ok or result["dynamic"], key=lambda r: r["sequences_per_s"])
    return {
        "p99_goal_ms": p99_goal_ms,
        "best_unbatched": best_unbatched,
        "best_dynamic_within_goal": best if ok else None,
        "speedup": best["sequences_per_s"] / best_unbatched["sequences_per_s"],
    }


def measure(
    model_dir: str, data: list[list[Interaction]], args: argparse.Namespace, gflops: float
) -> dict[str, Any]:
    """Every configuration on one checkpoint: the scorer alone, unbatched, dynamic batching."""
    seconds = 1.0 if args.quick else args.seconds
    settings = SETTINGS[1::2] if args.quick else SETTINGS
    concurrency = [1, 64] if args.quick else CONCURRENCY
    batch_sizes = [1, 8, 32, 128] if args.quick else [1, 4, 16, 64, 128, 256]
    scorer = NeuralScorer.load(model_dir, device=args.device)
    widths = [scorer.width_for(len(h)) for h in data]
    median_width = int(np.median(widths))
    flops = flops_per_sequence(scorer, median_width)
    result: dict[str, Any] = {
        "model": {"name": scorer.name, "version": scorer.version, "dir": model_dir},
        "device": str(scorer.device),
        "torch_threads": args.threads,
        "host": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()},
        "history_lengths": {
            "median": float(np.median([len(h) for h in data])),
            "median_bucket_width": median_width,
        },
        "floor": {
            **flops,
            "matmul_gflops": gflops,
            "sequences_per_s_at_median_width": gflops * 1e9 / (2 * flops["macs_total"]),
            "note": "FLOPs only; the (B, n_items) log-softmax, blend, top-k and their "
            "backward are memory-bound passes not counted here",
        },
        "direct": [],
        "unbatched": [],
        "dynamic": [],
    }
    jobs: list[tuple[str, Any]] = [("direct", bs) for bs in batch_sizes]
    jobs += [("unbatched", (1, 0.0, c)) for c in concurrency]
    jobs += [("dynamic", (bs, d, c)) for bs, d in settings for c in concurrency if c > 1]
    for kind, arg in tqdm(jobs, desc=scorer.name, unit="cfg"):
        if kind == "direct":
            rate = direct(scorer, data, arg, seconds)
            result["direct"].append({"batch_size": arg, "sequences_per_s": rate})
        else:
            result[kind].append(asyncio.run(closed_loop(scorer, data, *arg, seconds, args.threads)))
    result["headline"] = headline(result, 50.0)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", default=str(ROOT / "runs/beauty-bsarec"))
    ap.add_argument(
        "--baseline-dir",
        default=None,
        help="a second checkpoint (e.g. the older Transformer), measured the same way",
    )
    ap.add_argument("--dataset", default=str(DATASET))
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    ap.add_argument("--seconds", type=float, default=4.0, help="per configuration")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the inference thread")
    ap.add_argument("--quick", action="store_true", help="fewer configurations, 1 s each")
    ap.add_argument("--out", default=str(ROOT / "results/bench_batcher.json"))
    args = ap.parse_args(argv)
    for d in filter(None, (args.model_dir, args.baseline_dir)):
        if not (Path(d) / "model.pt").exists():
            sys.exit(
                f"no checkpoint in {d}; train one first:\n"
                f"  .venv/bin/streamrec train --dataset {DATASET} --out runs/beauty-bsarec"
            )
    torch.set_num_threads(args.threads)  # "direct" runs on this thread: same count
    data = histories(Path(args.dataset), 5000, seed=0)
    gflops = matmul_gflops() if args.device != "cuda" else float("nan")
    result = measure(args.model_dir, data, args, gflops)
    if args.baseline_dir:
        result["baseline"] = measure(args.baseline_dir, data, args, gflops)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    plot(result, out.with_suffix(".png"))
    summary = {"model": result["model"]["name"], "speedup": round(result["headline"]["speedup"], 2),
               "headline": result["headline"]}  # fmt: skip
    if "baseline" in result:
        summary["baseline"] = {"model": result["baseline"]["model"]["name"],
                               "headline": result["baseline"]["headline"]}  # fmt: skip
    print(json.dumps(summary, indent=2))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
