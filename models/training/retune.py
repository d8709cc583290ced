"""Re-tune a trained checkpoint's blend on validation: ``streamrec train --retune-blend``.

The network stays as trained; the transition weight, its smoothing and the seen
demotion are searched again on the same validation split ``train`` uses (never on
test), and the checkpoint directory is rewritten with the new blend (a new
version id, since it scores differently). ``metrics.json`` keeps the training
history and records the new grid and validation figures under the same keys,
with the seconds the re-tune took.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import torch

from models.nn.predictor import Predictor
from models.serving import checkpoint


def retune_blend(dataset: str, out: str, device: str = "cpu") -> dict[str, Any]:
    from models.training.train import SELECT_BY, prepare_data, tune_and_validate

    t0 = time.monotonic()
    ckpt = checkpoint.load(out, device)
    net = ckpt.network
    prep = prepare_data(dataset, copy.deepcopy(net.config), private=False)
    if prep.vocab.to_list() != ckpt.vocab.to_list():
        raise ValueError(f"{out} was not trained on {dataset}: the catalogues differ")
    predictor = Predictor(net, prep.transitions, torch.device(device))
    grid, valid_blended = tune_and_validate(predictor, prep)
    meta = {k: v for k, v in ckpt.meta.items() if k not in ("version", "created")}
    meta["blend_retuned"] = True
    version = checkpoint.save(out, net, prep.vocab, prep.transitions, meta)
    path = Path(out, "metrics.json")
    report: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    report.update(
        {
            "version": version,
            "model_config": net.config.to_dict(),
            "valid_blended": valid_blended,
            "blend_selected_by": f"validation {SELECT_BY}",
            "blend_grid": grid,
            "retune_seconds": time.monotonic() - t0,
        }
    )
    path.write_text(json.dumps(report, indent=2))
    return report
