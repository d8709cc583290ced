"""The promotion gate: is a candidate no worse than a reference, beyond the holdout's noise?

Both models rank the same held-out events, so their per-event NDCG@10 can be
compared pair by pair. The gate looks at the mean paired difference
``d = mean(candidate - reference)`` and its standard error, clustered by user
(one user's held-out events are not independent of each other). The candidate
fails when it is worse by more than the noise can explain and by more than a
relative margin of the reference's score::

    fail  <=>  d < -max(rel_margin * reference_score, z * se)

An absolute margin decides nothing when the metric itself is smaller than it
(NDCG@10 near 0.002 on sparse logs), and rejecting on any negative mean
would reject half of all equally good candidates by chance. With ``z * se``
the tolerance shrinks as the holdout grows; the relative margin keeps a
large holdout from rejecting a candidate for a difference nobody would notice.

Used against the current model and against an older ancestor (the anchor), so
a chain of candidates each slightly worse than its parent cannot drift down
unnoticed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

K = 10


def ndcg_gains(ranks: np.ndarray, k: int = K) -> np.ndarray:
    """Per-event NDCG@k from 0-based target ranks: 1/log2(rank + 2) in the top k, else 0."""
    r = np.asarray(ranks, dtype=np.float64)
    return np.where(r < k, 1.0 / np.log2(r + 2.0), 0.0)


@dataclass
class Verdict:
    passed: bool
    mean_diff: float  # candidate minus reference, mean over held-out events
    se: float  # standard error of mean_diff, clustered by user
    tolerance: float  # max(rel_margin * reference score, z * se)
    reference_score: float
    events: int
    users: int

    def to_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def clustered_se(diff: np.ndarray, users: Sequence[str]) -> float:
    """Standard error of ``diff.mean()`` with the events of one user as one cluster."""
    n = len(diff)
    if n < 2:
        return 0.0
    _, cluster = np.unique(np.asarray(users, dtype=object).astype(str), return_inverse=True)
    n_clusters = int(cluster.max()) + 1
    if n_clusters < 2:
        return float(diff.std(ddof=1) / np.sqrt(n))
    resid = np.bincount(cluster, weights=diff - diff.mean(), minlength=n_clusters)
    var = float((resid**2).sum()) / n**2 * n_clusters / (n_clusters - 1)
    return float(np.sqrt(var))


def non_inferior(
    candidate: np.ndarray,
    reference: np.ndarray,
    users: Sequence[str],
    rel_margin: float,
    z: float,
) -> Verdict:
    """Compare per-event NDCG@10 of candidate and reference on the same held-out events."""
    cand = np.asarray(candidate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if len(cand) != len(ref) or len(cand) != len(users):
        raise ValueError("candidate, reference and users must be paired event by event")
    if len(cand) == 0:
        return Verdict(False, 0.0, 0.0, 0.0, 0.0, 0, 0)
    diff = cand - ref
    mean, se = float(diff.mean()), clustered_se(diff, users)
    ref_score = float(ref.mean())
    tolerance = max(rel_margin * ref_score, z * se)
    n_users = len(set(users))
    return Verdict(mean >= -tolerance, mean, se, tolerance, ref_score, len(cand), n_users)
