"""Do served influence weights rank a user's events as exact deletion does?

For each sequence, the served pass (:class:`models.serving.fused_pass.ServingPass`, what a
worker publishes) gives one grad x input contribution per event of the window; exact
leave-one-out deletes each event in turn and measures the top item's score drop.
Reported, averaged over sequences with at least three events in the window (two
points always correlate at +/-1):

- Spearman correlation of the raw served contributions with the drops;
- the same for the published weights (clipped at 0 and normalised, so ties at 0);
- how often the served top event is also the event whose deletion costs most.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import spearmanr

from models.nn.batching import collate
from models.nn.predictor import Predictor
from models.serving.fused_pass import ServingPass
from models.serving.influence import normalised_weights, raw_leave_one_out
from models.training.data import EncodedSequence


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None  # undefined for a constant ranking
    return float(spearmanr(a, b).statistic)


def rank_agreement(
    predictor: Predictor, seqs: Sequence[EncodedSequence], batch_size: int = 128
) -> dict[str, float | int]:
    """Served influences against exact leave-one-out drops (see the module docstring)."""
    cfg = predictor.network.config
    seqs = [s for s in seqs if min(len(s.items), cfg.max_len) >= 3]
    serving = ServingPass(predictor)
    raw_rho: list[float] = []
    pub_rho: list[float] = []
    top_same = 0
    for i in range(0, len(seqs), batch_size):
        chunk = seqs[i : i + batch_size]
        batch = collate(chunk, cfg.max_len, cfg.use_time).to(predictor.device)
        served = serving.run(batch, 1, influences=True)
        assert served.contributions is not None
        top = served.top_cols[:, 0].to(predictor.device)
        drops = raw_leave_one_out(predictor, chunk, top)
        lengths = [len(s.items) for s in chunk]
        published = normalised_weights(served.contributions, lengths, cfg.max_len)
        for b, n in enumerate(lengths):
            w = min(n, cfg.max_len)
            raw = served.contributions[b, :w].numpy()
            drop = drops[b, :w].numpy()
            pub = np.asarray(published[b][n - w :])
            for rhos, x in ((raw_rho, raw), (pub_rho, pub)):
                rho = _spearman(x, drop)
                if rho is not None:
                    rhos.append(rho)
            top_same += int(np.argmax(raw) == np.argmax(drop))
    n = len(seqs)
    return {
        "users": n,
        "spearman_raw_vs_loo": float(np.mean(raw_rho)) if raw_rho else float("nan"),
        "spearman_published_vs_loo": float(np.mean(pub_rho)) if pub_rho else float("nan"),
        "users_with_defined_rho": len(raw_rho),
        "top_event_agrees": top_same / n if n else float("nan"),
    }
