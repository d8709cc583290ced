"""Influence weights and the deletion faithfulness check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from models.evaluation.agreement import rank_agreement
from models.evaluation.deletion import deletion_check
from models.nn.network import SequenceRecommender
from models.nn.predictor import Predictor
from models.nn.transitions import Transitions
from models.serving.influence import METHODS, delete_event, influences

Factory = Callable[..., Any]


def _predictor(net: SequenceRecommender, transition: float) -> Predictor:
    net.config.blend.transition = transition
    trans = Transitions.fit([np.array([2, 3, 4, 5, 6, 2, 3])], net.config.n_items + 2)
    return Predictor(net, trans, torch.device("cpu"))


@pytest.mark.parametrize("method", METHODS)
def test_influences_sum_to_one(
    arch: str, method: str, make_network: Factory, make_seq: Factory
) -> None:
    p = _predictor(make_network(arch), transition=1.0)
    seqs = [make_seq([2, 3, 4]), make_seq([9]), make_seq(list(range(2, 14)))]
    w = influences(p, seqs, torch.tensor([0, 1, 2]), method)
    assert [len(x) for x in w] == [3, 1, 12]
    for x in w:
        assert sum(x) == pytest.approx(1.0)
        assert min(x) >= 0.0
    assert w[2][:4] == [0.0] * 4  # outside the max_len=8 window


def test_transition_evidence_goes_to_the_last_event(
    make_network: Factory, make_seq: Factory
) -> None:
    p = _predictor(make_network("transformer"), transition=50.0)  # transitions dominate
    # Column 1 is item index 3, and 2 -> 3 is a counted transition.
    w = influences(p, [make_seq([9, 8, 2])], torch.tensor([1]))
    assert int(np.argmax(w[0])) == 2


def test_delete_event(make_seq: Factory) -> None:
    s = delete_event(make_seq([2, 3, 4], [2, 3, 4]), 1)
    assert s.items.tolist() == [2, 4] and s.events.tolist() == [2, 4]


@pytest.mark.parametrize("method", METHODS)
def test_deletion_check_runs(method: str, make_network: Factory, make_seq: Factory) -> None:
    p = _predictor(make_network("lstm"), transition=1.0)
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 12, size=40)
    seqs = [make_seq(rng.integers(2, 32, size=int(n)).tolist()) for n in lengths]
    r = deletion_check(p, seqs, method=method, seed=0, batch_size=16)
    assert r["users"] == sum(len(s.items) >= 2 for s in seqs)
    assert 0.0 <= r["rate_top_beats_random"] <= 1.0
    assert np.isfinite(r["mean_drop_top_influence"]) and np.isfinite(r["mean_drop_random"])
    if method == "leave_one_out":
        # Deleting the event whose deletion hurts most can never hurt less than another one.
        assert r["mean_drop_top_influence"] >= r["mean_drop_random"]


def test_rank_agreement_of_served_weights_with_exact_deletion(
    arch: str, make_network: Factory, make_seq: Factory
) -> None:
    rng = np.random.default_rng(1)
    seqs = [make_seq(rng.integers(2, 32, size=int(n)).tolist()) for n in rng.integers(1, 12, 30)]
    alone = rank_agreement(_predictor(make_network(arch), transition=0.0), seqs)
    assert alone["users"] == sum(min(len(s.items), 8) >= 3 for s in seqs)
    assert -1.0 <= alone["spearman_raw_vs_loo"] <= 1.0
    assert 0.0 <= alone["top_event_agrees"] <= 1.0
    # When transitions dominate (2 -> 3 is counted), the last event carries the score
    # under both methods.
    ends_in_2 = [make_seq([*s.items.tolist(), 2]) for s in seqs]
    ruled = rank_agreement(_predictor(make_network(arch), transition=50.0), ends_in_2)
    assert ruled["top_event_agrees"] == 1.0
