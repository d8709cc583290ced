"""The promotion gate: paired per-event NDCG@10 differences against the holdout's noise."""

from __future__ import annotations

import numpy as np

from models.training.gate import clustered_se, ndcg_gains, non_inferior


def test_gains_from_ranks() -> None:
    np.testing.assert_allclose(
        ndcg_gains(np.array([0, 1, 9, 10, 500])), [1, 1 / np.log2(3), 1 / np.log2(11), 0, 0]
    )


def test_an_equal_candidate_passes_and_a_clearly_worse_one_fails_on_a_small_holdout() -> None:
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, 30, size=40)  # 40 held-out events, about a third of them hits
    users = [str(u % 25) for u in range(40)]
    ref = ndcg_gains(ranks)
    assert non_inferior(ref, ref, users, 0.05, 1.64).passed
    worse = ndcg_gains(ranks + 15)  # every hit pushed down the list or out of it
    verdict = non_inferior(worse, ref, users, 0.05, 1.64)
    assert not verdict.passed and verdict.mean_diff < -verdict.tolerance


def test_noise_alone_does_not_reject_but_a_tiny_score_is_no_excuse() -> None:
    rng = np.random.default_rng(1)
    users = [str(u) for u in range(500)]
    # Two equally good models on sparse data: a hit on 1% of events each, different events.
    a = ndcg_gains(np.where(rng.random(500) < 0.01, 0, 1000))
    b = ndcg_gains(np.where(rng.random(500) < 0.01, 0, 1000))
    assert non_inferior(a, b, users, 0.05, 1.64).passed
    assert non_inferior(b, a, users, 0.05, 1.64).passed
    # An absolute margin of 0.005 would let a candidate with no hit at all pass here.
    none = np.zeros(500)
    ref = ndcg_gains(np.where(np.arange(500) % 25 == 0, 0, 1000))  # 20 hits of 500
    assert not non_inferior(none, ref, users, 0.05, 1.64).passed


def test_one_users_events_count_as_one_cluster() -> None:
    diff = np.array([1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
    spread = [str(i) for i in range(6)]
    grouped = ["a", "a", "a", "b", "b", "b"]
    assert clustered_se(diff, grouped) > clustered_se(diff, spread) > 0


def test_no_events_never_pass() -> None:
    assert not non_inferior(np.zeros(0), np.zeros(0), [], 0.05, 1.64).passed
