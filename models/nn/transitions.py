"""First-order item transitions (Markov-1) counted on training sequences.

Used twice: as the Markov-1 baseline, and as a signal blended into the neural
score (transitions and the network are complementary on these datasets).

``P_T(j | i) = (c(i, j) + alpha * p(j)) / (c(i) + alpha)`` where ``p`` is add-one
smoothed training popularity. With ``alpha <= 1`` the ranking is exactly "by
transition count, ties by popularity", because ``alpha * p(j) < 1``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from models.nn.vocab import FIRST


class Transitions:
    def __init__(self, counts: sp.csr_matrix, item_counts: np.ndarray) -> None:
        self.counts = counts  # (n_indices, n_items): row = previous item index, col = next column
        self.row_totals = np.asarray(counts.sum(axis=1)).ravel()
        self.item_counts = item_counts  # (n_items,) training occurrences
        n = len(item_counts)
        self.log_pop = np.log((item_counts + 1.0) / (item_counts.sum() + n))
        self._pop = np.exp(self.log_pop)

    @classmethod
    def fit(cls, sequences: Iterable[np.ndarray], n_indices: int) -> Transitions:
        """Count consecutive pairs of item indices; pairs touching unknown items are skipped."""
        n_items = n_indices - FIRST
        prev, nxt, seen = [], [], []
        for s in sequences:
            s = s[s >= FIRST]  # unknown/padding carry no transition information
            seen.append(s)
            prev.append(s[:-1])
            nxt.append(s[1:])
        rows = np.concatenate(prev) if prev else np.zeros(0, np.int64)
        cols = np.concatenate(nxt) - FIRST if nxt else np.zeros(0, np.int64)
        counts = sp.coo_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(n_indices, n_items)
        ).tocsr()
        all_items = np.concatenate(seen) - FIRST if seen else np.zeros(0, np.int64)
        item_counts = np.bincount(all_items, minlength=n_items).astype(np.float64)
        return cls(counts, item_counts)

    def log_alpha_pop(self, alpha: float) -> np.ndarray:
        """(n_items,) ``log(alpha * p(j))``: the numerator for a successor never observed."""
        with np.errstate(divide="ignore"):
            return np.log(alpha * self._pop)

    def log_totals(self, last: np.ndarray, alpha: float) -> np.ndarray:
        """(B,) ``log(c(i) + alpha)``: the denominator of each row."""
        with np.errstate(divide="ignore"):
            return np.log(self.row_totals[last] + alpha)

    def observed(
        self, last: np.ndarray, alpha: float, log_tot: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows, columns and ``log P_T(j | last)`` of every observed successor."""
        r, c, counts = self._entries(last)
        return r, c, np.log(counts + alpha * self._pop[c]) - log_tot[r]

    def log_prob_at(self, last: np.ndarray, cols: np.ndarray, alpha: float) -> np.ndarray:
        """(B,) ``log P_T(cols[b] | last[b])``, one value per row."""
        r, c, observed = self._entries(last)
        counts = np.zeros(len(last), dtype=observed.dtype)
        hit = c == cols[r]
        counts[r[hit]] = observed[hit]  # a row holds a column at most once
        return np.log(counts + alpha * self._pop[cols]) - self.log_totals(last, alpha)

    def _entries(self, last: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row number in ``last``, column and count of every stored entry of the rows
        ``last``, row by row: ``self.counts[last].tocoo()``'s, read from the CSR arrays
        (scipy's indexing cost more than the serving pass's top-k on small batches)."""
        indptr = self.counts.indptr
        starts = indptr[last]
        lengths = indptr[last + 1] - starts
        rows = np.repeat(np.arange(len(last)), lengths)
        # Entry k of the output is entry (k - first output of its row) of its row.
        shift = starts - (np.cumsum(lengths) - lengths)
        pos = np.arange(int(lengths.sum())) + np.repeat(shift, lengths)
        return rows, self.counts.indices[pos], self.counts.data[pos]

    def log_prob(self, last: np.ndarray, alpha: float) -> np.ndarray:
        """(B,) previous item indices -> (B, n_items) float32 log P_T(j | last).

        Rows are sparse, so the dense part ``log(alpha * p(j)) - log(c(i) + alpha)``
        is a broadcast and only the observed successors are computed one by one.
        """
        log_tot = self.log_totals(last, alpha)
        out = (self.log_alpha_pop(alpha)[None, :] - log_tot[:, None]).astype(np.float32)
        r, c, logp = self.observed(last, alpha, log_tot)
        out[r, c] = logp
        return out

    def save(self, path: Path) -> None:
        c = self.counts
        np.savez_compressed(
            path,
            data=c.data,
            indices=c.indices,
            indptr=c.indptr,
            shape=np.array(c.shape),
            item_counts=self.item_counts,
        )

    @classmethod
    def load(cls, path: Path) -> Transitions:
        z = np.load(path)
        counts = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        return cls(counts, z["item_counts"])
