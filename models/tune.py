"""Re-tune the blend of an existing checkpoint on validation, without retraining.

``python -m models.tune --dataset F --model DIR`` runs the same grid search as the
end of training (see :func:`models.train.tune_blend`), rewrites the checkpoint
with the chosen weights (so it gets a new version id) and writes ``DIR/tune.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from models import checkpoint
from models.data import file_digest, leave_one_out, load_sequences
from models.predictor import Predictor
from models.ranking import encode_examples
from models.train import SELECT_BY, tune_blend


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="streamrec tune", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--model", required=True, help="checkpoint directory (rewritten in place)")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    ckpt = checkpoint.load(a.model)
    cfg = ckpt.network.config
    split = leave_one_out(load_sequences(a.dataset))
    inputs, targets = encode_examples(split.valid, ckpt.vocab, cfg.use_events)
    # The checkpoint's counts cover the training part: exactly the pre-validation history.
    predictor = Predictor(ckpt.network, ckpt.transitions, torch.device("cpu"))
    before = cfg.to_dict()["blend"]
    cfg.blend, grid = tune_blend(predictor, inputs, targets)
    meta = {k: v for k, v in ckpt.meta.items() if k not in ("version", "created")}
    meta["retuned_from"] = ckpt.version
    version = checkpoint.save(a.model, ckpt.network, ckpt.vocab, ckpt.transitions, meta)
    report = {
        "dataset": a.dataset,
        "dataset_sha256_16": file_digest(a.dataset),
        "previous_version": ckpt.version,
        "version": version,
        "selected_by": f"validation {SELECT_BY}",
        "blend_before": before,
        "blend_after": cfg.to_dict()["blend"],
        "grid": grid,
    }
    Path(a.model, "tune.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("version", "blend_before", "blend_after")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
