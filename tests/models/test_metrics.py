"""Ranking metrics on hand-computed examples."""

from __future__ import annotations

import math

import pytest
import torch

from models.evaluation.metrics import (
    NonFiniteScoreError,
    RankingMetrics,
    ranks_under_demotion,
    target_ranks,
)


def test_ranks_with_ties_broken_against_the_target() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.5], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 2.0]])
    # row 0: target col 3 (0.5) is behind 0.9 and behind the tied col 2 -> rank 2
    # row 1: all tied, target col 0 -> rank 0; row 2: target col 3 is the best -> rank 0
    assert target_ranks(scores, torch.tensor([3, 0, 3])).tolist() == [2, 0, 0]
    # A target outside the catalogue (-1) can never be hit.
    assert target_ranks(scores[:1], torch.tensor([-1])).tolist() == [4]


def test_metrics_hand_computed() -> None:
    m = RankingMetrics(ks=(1, 3))
    m.update(torch.tensor([0, 2, 5]))  # hit@1, hit@3 at rank 2, miss
    r = m.result()
    assert r["HR@1"] == pytest.approx(1 / 3)
    assert r["HR@3"] == pytest.approx(2 / 3)
    assert r["NDCG@1"] == pytest.approx(1 / 3)
    assert r["NDCG@3"] == pytest.approx((1.0 + 1.0 / math.log2(4)) / 3)  # (1 + 0.5) / 3
    assert r["MRR"] == pytest.approx((1.0 + 1 / 3 + 1 / 6) / 3)
    assert r["users"] == 3


def test_default_keys() -> None:
    m = RankingMetrics()
    m.update(torch.tensor([0]))
    keys = {"HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"}
    assert keys <= set(m.result())


def test_nan_scores_fail_loudly() -> None:
    scores = torch.tensor([[0.1, float("nan"), 0.3]])
    with pytest.raises(NonFiniteScoreError):
        target_ranks(scores, torch.tensor([1]))


def test_ranks_under_demotion_equal_the_dense_ranks() -> None:
    torch.manual_seed(0)
    scores = torch.randint(0, 6, (40, 25)).float()  # many ties
    targets = torch.randint(-1, 25, (40,))
    mask = (torch.rand(40, 25) < 0.2).float()
    mask[3, targets[3].clamp(min=0)] = 1.0  # a row whose target is itself demoted
    weights = [0.0, 0.5, 2.0, 100.0]
    fast = ranks_under_demotion(scores, targets, mask, weights)
    for w, ranks in zip(weights, fast, strict=True):
        assert torch.equal(ranks, target_ranks(scores - w * mask, targets))
