"""Checkpoint round-trip and the serving scorer's robustness."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.base import Interaction, Scorer
from models.nn.batching import collate
from models.nn.network import SequenceRecommender
from models.nn.predictor import Predictor
from models.nn.transitions import Transitions
from models.nn.vocab import ItemVocab
from models.serving import checkpoint
from models.serving.scorer import NeuralScorer

Factory = Callable[..., Any]
ITEMS = [str(100 + i) for i in range(30)]


def _save(path: Path, net: SequenceRecommender) -> Transitions:
    net.config.blend.transition = 1.0
    vocab = ItemVocab(ITEMS)
    trans = Transitions.fit([np.array([2, 3, 4, 5, 2, 3])], vocab.n_indices)
    checkpoint.save(path, net, vocab, trans, {"dataset": "unit"})
    return trans


def _random_histories(lengths: list[int], seed: int) -> list[list[Interaction]]:
    """Views of random items, one history of each length."""
    rng = np.random.default_rng(seed)
    return [
        [Interaction(ITEMS[int(i)], "view", 1000 * t) for t, i in enumerate(rng.integers(0, 30, n))]
        for n in lengths
    ]


def test_round_trip_scores_identically(
    tmp_path: Path, arch: str, make_network: Factory, make_seq: Factory
) -> None:
    net = make_network(arch)
    trans = _save(tmp_path, net)
    ckpt = checkpoint.load(tmp_path)
    assert ckpt.network.config == net.config
    assert ckpt.vocab.to_list() == ITEMS
    assert ckpt.version == checkpoint.version_id(net) and ckpt.version.startswith(arch)
    assert ckpt.meta["dataset"] == "unit"
    batch = collate([make_seq([2, 3, 4]), make_seq([7])], 8, False)
    before = Predictor(net, trans, torch.device("cpu")).score(batch)
    after = Predictor(ckpt.network, ckpt.transitions, torch.device("cpu")).score(batch)
    torch.testing.assert_close(before, after)


def test_version_changes_with_weights(make_network: Factory) -> None:
    net = make_network("transformer")
    v1 = checkpoint.version_id(net)
    with torch.no_grad():
        net.next_head.bias[0] += 1.0
    assert checkpoint.version_id(net) != v1


def test_scorer_handles_unknown_short_long_and_empty(
    tmp_path: Path, arch: str, make_network: Factory
) -> None:
    _save(tmp_path, make_network(arch))
    scorer = NeuralScorer.load(tmp_path, device="cpu")
    assert isinstance(scorer, Scorer)
    long_seq = [Interaction(ITEMS[i % 30], "view", 1000 * i) for i in range(20)]  # > max_len 8
    batch = [
        [Interaction("100", "click", 0), Interaction("not-an-item", "view", 5_000)],
        [Interaction("nope", "teleport", 0)],
        long_seq,
        [],
    ]
    out = scorer.score(batch, k=5)
    assert len(out) == 4
    for s, inp in zip(out, batch, strict=True):
        assert len(s.items) == 5
        assert all(item in set(ITEMS) for item, _ in s.items)
        scores = [v for _, v in s.items]
        assert scores == sorted(scores, reverse=True) and all(np.isfinite(scores))
        assert len(s.influences) == len(inp)
        if inp:
            assert sum(s.influences) == pytest.approx(1.0)
            assert min(s.influences) >= 0.0
    assert out[2].influences[:12] == [0.0] * 12  # beyond the window of 8
    assert scorer.version.startswith(arch)
    assert scorer.score([], k=3) == []


@pytest.mark.parametrize("seen", [0.0, 2.0])
def test_serving_pass_matches_the_reference_scores_and_influences(
    tmp_path: Path, arch: str, seen: float, make_network: Factory
) -> None:
    """Bucketed, fused serving (one forward, one backward) == score() then influences()."""
    from models.serving.influence import influences

    net = make_network(arch)
    net.config.blend.next_item = 0.8  # exercise the weighted path too
    net.config.blend.seen = seen
    _save(tmp_path, net)
    scorer = NeuralScorer.load(tmp_path, device="cpu")
    histories = _random_histories([1, 3, 8, 2, 12, 5], seed=0)
    out = scorer.score(histories, k=4)
    ckpt = checkpoint.load(tmp_path)
    pred = Predictor(ckpt.network, ckpt.transitions, torch.device("cpu"))
    enc = [scorer._encode(h) for h in histories]
    ref = pred.score(collate(enc, 8, False))
    ref_top = ref.topk(4, dim=1)
    ref_w = influences(pred, enc, ref_top.indices[:, 0])
    for row, s in enumerate(out):
        assert [ckpt.vocab.column_item(int(c)) for c in ref_top.indices[row]] == [
            i for i, _ in s.items
        ]
        np.testing.assert_allclose([v for _, v in s.items], ref_top.values[row], rtol=1e-5)
        np.testing.assert_allclose(s.influences, ref_w[row], atol=1e-5)


@pytest.mark.parametrize("seen", [0.0, 2.0])
def test_histories_of_several_padding_widths_score_as_they_do_alone(
    tmp_path: Path, arch: str, seen: float, make_network: Factory
) -> None:
    """Padding groups share one catalogue-wide pass: each row's answer is its own."""
    net = make_network(arch, max_len=20)
    net.config.blend.seen = seen
    _save(tmp_path, net)
    scorer = NeuralScorer.load(tmp_path, device="cpu")
    histories = _random_histories([3] * 17 + [15] * 17 + [40], seed=1)
    widths = {scorer.width_for(len(h)) for h in histories}
    assert len(widths) == 3  # 8, 16 and the window of 20: three groups, one pass
    together = scorer.score(histories, k=5)
    for history, answer in zip(histories, together, strict=True):
        [alone] = scorer.score([history], k=5)
        assert [i for i, _ in answer.items] == [i for i, _ in alone.items]
        np.testing.assert_allclose(
            [v for _, v in answer.items], [v for _, v in alone.items], rtol=1e-5
        )
        np.testing.assert_allclose(answer.influences, alone.influences, atol=1e-5)


def test_a_large_seen_weight_never_recommends_the_window(
    tmp_path: Path, make_network: Factory
) -> None:
    net = make_network("bsarec")
    net.config.blend.seen = 100.0
    _save(tmp_path, net)
    scorer = NeuralScorer.load(tmp_path, device="cpu")
    history = [Interaction(ITEMS[i], "view", 1000 * i) for i in (0, 1, 2, 3, 4)]
    [answer] = scorer.score([history], k=10)
    assert not {item for item, _ in answer.items} & {e.item_id for e in history}
    net.config.blend.seen = 0.0
