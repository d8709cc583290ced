"""Faithfulness of influence weights: deleting the top-influence event should hurt most."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.nn.batching import collate
from models.nn.predictor import Predictor
from models.serving.influence import delete_event, influences
from models.training.data import EncodedSequence


def deletion_check(
    predictor: Predictor,
    seqs: Sequence[EncodedSequence],
    method: str = "grad_x_input",
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, float | int | str]:
    """Does deleting the top-influence event lower the top item's score more than a random one?

    For every sequence with at least two events in the window: take the top item,
    delete (a) the highest-influence event and (b) a uniformly random *other*
    event in the window, and compare the drops of that item's blended score.
    """
    cfg = predictor.network.config
    rng = np.random.default_rng(seed)
    seqs = [s for s in seqs if len(s.items) >= 2]
    wins = ties = 0
    drops_top: list[float] = []
    drops_rand: list[float] = []
    for i in range(0, len(seqs), batch_size):
        chunk = seqs[i : i + batch_size]
        full = predictor.score(collate(chunk, cfg.max_len, cfg.use_time))
        top_score, top = full.max(dim=1)
        weights = influences(predictor, chunk, top, method)
        del_top, del_rand = [], []
        for s, w in zip(chunk, weights, strict=True):
            n = len(s.items)
            start = n - min(n, cfg.max_len)
            best = start + int(np.argmax(w[start:]))
            others = [p for p in range(start, n) if p != best]
            del_top.append(delete_event(s, best))
            del_rand.append(delete_event(s, int(rng.choice(others))))
        top_d = top.unsqueeze(1)
        s_top = predictor.score(collate(del_top, cfg.max_len, cfg.use_time)).gather(1, top_d)
        s_rand = predictor.score(collate(del_rand, cfg.max_len, cfg.use_time)).gather(1, top_d)
        d_top = (top_score - s_top.squeeze(1)).cpu()
        d_rand = (top_score - s_rand.squeeze(1)).cpu()
        wins += int((d_top > d_rand).sum())
        ties += int((d_top == d_rand).sum())
        drops_top += d_top.tolist()
        drops_rand += d_rand.tolist()
    n = len(drops_top)
    return {
        "method": method,
        "users": n,
        "rate_top_beats_random": wins / n if n else float("nan"),
        "ties": ties,
        "mean_drop_top_influence": float(np.mean(drops_top)) if n else float("nan"),
        "mean_drop_random": float(np.mean(drops_rand)) if n else float("nan"),
    }
