"""Every prefix as a sample: which prefix predicts which target."""

from __future__ import annotations

import numpy as np

from models.training.data import EncodedSequence
from models.training.prefixes import prefix, prefix_batches, prefix_index
from models.training.train import training_set


def _seq(items: list[int]) -> EncodedSequence:
    a = np.array(items, dtype=np.int64)
    return EncodedSequence(a, np.ones_like(a), None)


def test_each_target_follows_its_own_prefix_cut_to_the_window() -> None:
    data = training_set([_seq([2, 3, 4, 5, 6, 7]), _seq(list(range(2, 12)))], max_len=4)
    rows, cols, ends = prefix_index(data.inputs, data.targets)
    pairs = []
    for r, c, e in zip(rows, cols, ends, strict=True):
        p = prefix(data.inputs[r], int(e), 4)
        pairs.append((p.items.tolist(), int(data.targets[r][c])))
    # Targets are catalogue columns (item index - 2); prefixes keep one extra event for its gap.
    assert pairs[0] == ([2, 3], 2) and pairs[3] == ([2, 3, 4, 5, 6], 5)
    assert pairs[4] == ([3, 4, 5, 6, 7], 6) and pairs[-1] == ([6, 7, 8, 9, 10], 9)
    assert len(pairs) == 8


def test_batches_are_runs_of_the_length_order_and_cover_every_sample() -> None:
    ends = np.array([1, 2, 2, 3, 9, 9, 9, 1])
    batches = list(prefix_batches(ends, 4, 2, np.random.default_rng(0)))
    assert sorted(np.concatenate(batches).tolist()) == list(range(8))
    lengths = [sorted(min(int(ends[i]), 4) for i in b) for b in batches]
    flat = [n for run in sorted(lengths) for n in run]
    assert flat == sorted(flat) == [1, 1, 2, 2, 3, 4, 4, 4]
