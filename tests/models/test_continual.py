"""Vocabulary growth and one continual round, on a tiny synthetic stream."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from models.datasets import UserSequence
from models.nn.batching import collate
from models.nn.config import ModelConfig
from models.nn.network import SequenceRecommender
from models.nn.vocab import ItemVocab
from models.serving.checkpoint import Checkpoint
from models.training.continual import ContinualConfig, RoundData, run_round
from models.training.data import Example, encode
from models.training.grow import grow

CPU = torch.device("cpu")
CFG = ContinualConfig(
    epochs=5, lr=3e-3, scratch=ModelConfig(arch="transformer", dim=16, n_layers=1, max_len=8)
)


def test_growing_keeps_every_old_score() -> None:
    torch.manual_seed(0)
    net = SequenceRecommender(ModelConfig(arch="transformer", n_items=5, dim=8, max_len=4)).eval()
    vocab = ItemVocab("abcde")
    grown, bigger = grow(net, vocab, ["x", "a", "y"])
    assert bigger.to_list() == list("abcdexy") and grown.config.n_items == 7
    seq = UserSequence("u", ["a", "c", "b"])
    batch = collate([encode(seq, vocab, False)], 4, False)
    with torch.no_grad():
        old = net.next_logits(net.last_state(net(batch), batch.lengths))
        new = grown.eval().next_logits(grown.last_state(grown(batch), batch.lengths))
    torch.testing.assert_close(new[:, :5], old)
    assert new.shape == (1, 7)


def walks(cycle: list[str], users: int, steps: int, seed: int) -> RoundData:
    rng = random.Random(seed)
    seqs = []
    for u in range(users):
        start = rng.randrange(len(cycle))
        items = [cycle[(start + k) % len(cycle)] for k in range(steps)]
        seqs.append(
            UserSequence(str(u), items, ["click"] * steps, [1000 * k for k in range(steps)])
        )
    train = [s.head(-1) for s in seqs]
    holdout = [Example(s.head(-1), s.items[-1]) for s in seqs[: users // 2]]
    pairs = [(s.items[k - 1] if k else None, s.items[k]) for s in train for k in range(len(s))]
    return RoundData(train, holdout, pairs)


@pytest.mark.slow
def test_a_round_learns_new_items_and_the_gate_rejects_shuffled_labels() -> None:
    old = [str(i) for i in range(20)]
    first = run_round(None, walks(old, 150, 8, 0), CFG, CPU)
    assert first.reference == "popularity" and first.promote and first.new_items == 20
    assert first.candidate["HR@10"] > 0.9 > first.current["HR@10"]
    current = Checkpoint(first.network, first.vocab, first.transitions, {"version": "v1"})

    cycle = [*old[:10], "n1", *old[10:], "n2"]
    second = run_round(current, walks(cycle, 150, 8, 1), CFG, CPU)
    assert second.new_items == 2 and len(second.vocab) == 22 and second.promote
    assert second.candidate["NDCG@10"] > second.current["NDCG@10"]
    assert len(current.vocab) == 20  # the current model is never changed

    broken = dataclasses.replace(CFG, shuffle_labels=True)
    third = run_round(current, walks(old, 150, 8, 2), broken, CPU)
    assert not third.promote and not third.gate["current"]["passed"]
    verdict = third.gate["current"]
    assert verdict["mean_diff"] < -verdict["tolerance"] < 0

    # Unchanged (no epoch): equal to its parent, so it passes against it ...
    same = dataclasses.replace(CFG, epochs=0)
    fourth = run_round(current, walks(old, 150, 8, 3), same, CPU)
    assert fourth.promote and fourth.gate["current"]["mean_diff"] == 0.0
    # ... but a parent that drifted far below its ancestor does not pass on that account.
    drifted = Checkpoint(third.network, third.vocab, third.transitions, {"version": "v3"})
    fifth = run_round(drifted, walks(old, 150, 8, 3), same, CPU, anchor=current)
    assert fifth.gate["current"]["passed"] and not fifth.gate["anchor"]["passed"]
    assert not fifth.promote
