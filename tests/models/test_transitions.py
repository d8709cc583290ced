"""Transition lookups read from the CSR arrays agree with scipy's own indexing."""

from __future__ import annotations

import numpy as np
import pytest

from models.nn.transitions import Transitions
from models.nn.vocab import FIRST


@pytest.fixture
def transitions() -> Transitions:
    rng = np.random.default_rng(3)
    n_indices = FIRST + 40
    # Short random walks over a few items: repeated pairs, rows never seen, unknowns.
    seqs = [rng.integers(0, FIRST + 25, size=rng.integers(1, 12)) for _ in range(60)]
    return Transitions.fit(seqs, n_indices)


def last_items(t: Transitions) -> np.ndarray:
    n_indices = t.counts.shape[0]
    empty = int(np.flatnonzero(t.row_totals == 0)[0])
    # Repeats, an empty row, the final row, and the rows in no particular order.
    return np.array([FIRST + 3, empty, n_indices - 1, FIRST + 3, FIRST, FIRST + 24, 0])


def test_observed_matches_scipy_rows(transitions: Transitions) -> None:
    last, alpha = last_items(transitions), 0.1
    log_tot = transitions.log_totals(last, alpha)
    r, c, logp = transitions.observed(last, alpha, log_tot)
    seen = transitions.counts[last].tocoo()
    assert seen.nnz > 0
    np.testing.assert_array_equal(r, seen.row)
    np.testing.assert_array_equal(c, seen.col)
    expected = np.log(seen.data + alpha * transitions._pop[seen.col]) - log_tot[seen.row]
    np.testing.assert_array_equal(logp, expected)


def test_log_prob_at_matches_scipy_elements(transitions: Transitions) -> None:
    last, alpha = last_items(transitions), 0.1
    # Per row: an observed successor where there is one, else any column.
    seen = transitions.counts[last].tocoo()
    cols = np.array(
        [seen.col[seen.row == b][0] if (seen.row == b).any() else 7 for b in range(len(last))]
    )
    cols[1] = 5  # the empty row: nothing observed
    got = transitions.log_prob_at(last, cols, alpha)
    counts = np.asarray(transitions.counts[last.copy(), cols.copy()]).ravel()
    expected = np.log(counts + alpha * transitions._pop[cols]) - transitions.log_totals(last, alpha)
    np.testing.assert_array_equal(got, expected)
    # And the dense matrix agrees at those cells.
    dense = transitions.log_prob(last, alpha)
    np.testing.assert_allclose(dense[np.arange(len(last)), cols], got, rtol=1e-6)
