"""Evaluate a checkpoint: ``streamrec evaluate --dataset F --model DIR --json OUT``.

Protocol: leave-one-out (each user's last item is the test target, the
second-last the validation target, the rest training); the target is ranked
against the full catalogue, no sampled negatives and nothing removed from the
ranking. The popularity and Markov-1 baselines are fitted on the training part
of the same split and ranked by the same code. The model's test metrics are the
top-level ``HR@K`` / ``NDCG@K`` / ``MRR`` keys; the network without the blended
transition signal is reported under ``network_only``, and with the blend's
demotion of items already in the window (but no transitions) under
``network_unseen``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.datasets import load_sequences
from models.evaluation.agreement import rank_agreement
from models.evaluation.baselines import markov_scores, popularity_scores
from models.evaluation.deletion import deletion_check
from models.evaluation.ranking import encode_examples, evaluate_ranking
from models.nn.predictor import Predictor
from models.nn.transitions import Transitions
from models.serving import checkpoint
from models.serving.influence import METHODS
from models.training.data import encode, file_digest, leave_one_out

PROTOCOL = {
    "split": "leave-one-out: last item = test target, second-last = validation, rest = training",
    "ranking": "full: target ranked against every catalogue item, no sampled negatives, "
    "history items not removed, ties broken against the target (stable sort by column)",
    "users": "all users with at least 3 events",
    "transitions": "counted over every user's events before the test target "
    "(training part + validation item); never the test targets",
    "baselines": "popularity = training-part item counts; markov1 = P(next | last item) "
    "over the same observed transitions, ties by popularity",
}


def evaluate(
    dataset: str,
    model_dir: str,
    influence: bool = False,
    influence_method: str | None = None,
    influence_users: int = 2000,
    device: str = "cpu",
    seed: int = 0,
    agreement_users: int = 500,
) -> dict[str, Any]:
    t0 = time.monotonic()
    ckpt = checkpoint.load(model_dir, device)
    cfg = ckpt.network.config
    sequences = load_sequences(dataset)
    split = leave_one_out(sequences)
    vocab = ckpt.vocab
    train_enc = [encode(s, vocab, cfg.use_events) for s in split.train]
    train_counts = Transitions.fit((s.items for s in train_enc), vocab.n_indices)
    inputs, targets = encode_examples(split.test, vocab, cfg.use_events)
    observed = Transitions.fit((s.items for s in inputs), vocab.n_indices)  # all pre-test events
    dev = torch.device(device)
    predictor = Predictor(ckpt.network, observed, dev)
    frozen = Predictor(ckpt.network, ckpt.transitions, dev)
    results = evaluate_ranking(
        {
            "model": predictor.score,
            "network_only": predictor.network_log_probs,
            "network_unseen": predictor.network_unseen,
            "model_frozen_transitions": frozen.score,
            "popularity": partial(popularity_scores, train_counts),
            "markov1": partial(markov_scores, observed),
            "markov1_training_part": partial(markov_scores, train_counts),
        },
        inputs,
        targets,
        cfg.max_len,
        cfg.use_time,
    )
    report: dict[str, Any] = {
        "dataset": str(dataset),
        "dataset_sha256_16": file_digest(dataset),
        "model_version": ckpt.version,
        "model_dir": str(model_dir),
        "arch": cfg.arch,
        "blend": cfg.to_dict()["blend"],
        "protocol": PROTOCOL,
        "targets_outside_catalogue": int((targets < 0).sum()),
        **results["model"],
        "network_only": results["network_only"],
        "network_unseen": results["network_unseen"],
        "model_frozen_transitions": results["model_frozen_transitions"],
        "baselines": {
            name: results[name] for name in ("popularity", "markov1", "markov1_training_part")
        },
    }
    if influence:
        method = influence_method or "grad_x_input"
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(inputs), size=min(influence_users, len(inputs)), replace=False)
        sample = [inputs[i] for i in pick]
        report["influence"] = deletion_check(predictor, sample, method, seed)
        # The transition term credits the last event, which makes the check easy; the
        # network alone shows whether the gradient x input part is faithful by itself.
        alone = copy.deepcopy(ckpt.network)
        alone.config.blend.transition = 0.0
        net_predictor = Predictor(alone, None, dev)
        report["influence_network_only"] = deletion_check(net_predictor, sample, method, seed)
        window = ckpt.network.config.max_len
        few = [s for s in sample if min(len(s.items), window) >= 3][:agreement_users]
        report["influence_rank_agreement"] = rank_agreement(predictor, few)
        report["influence_rank_agreement_network_only"] = rank_agreement(net_predictor, few)
    report["seconds"] = time.monotonic() - t0
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="streamrec evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--model", required=True, help="checkpoint directory")
    p.add_argument("--json", required=True, help="where to write the metrics JSON")
    p.add_argument("--influence", action="store_true", help="run the deletion faithfulness check")
    p.add_argument("--influence-method", choices=METHODS, default=None)
    p.add_argument("--influence-users", type=int, default=2000, help="test users to sample")
    p.add_argument(
        "--agreement-users",
        type=int,
        default=500,
        help="of those, users whose served influences are rank-correlated with exact deletion",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    report = evaluate(
        a.dataset,
        a.model,
        a.influence,
        a.influence_method,
        a.influence_users,
        device,
        a.seed,
        a.agreement_users,
    )
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(report, indent=2))
    keys = ("HR@10", "NDCG@10")
    print(f"model {report['model_version']}: " + " ".join(f"{k} {report[k]:.4f}" for k in keys))
    for name, m in report["baselines"].items():
        print(f"{name}: " + " ".join(f"{k} {m[k]:.4f}" for k in keys))
    for key in (
        "influence",
        "influence_network_only",
        "influence_rank_agreement",
        "influence_rank_agreement_network_only",
    ):
        if key in report:
            print(f"{key}:", json.dumps(report[key]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
