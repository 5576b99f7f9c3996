"""Negative samplers for sampled evaluation: uniform or by popularity, never the user's own items.

The sample depends only on the evaluation set, the catalogue, the weights and the seed, so every
model compared is ranked against the same candidates. Rejection is vectorised: draw a surplus for
all users at once, drop the user's items and duplicates, and redraw only for the rows still short.
"""

from __future__ import annotations

import numpy as np

from seqrec.data.corpus import Sequences


def _forbidden_keys(rows: Sequences, extra: Sequences | None, n_codes: int) -> np.ndarray:
    """Sorted unique keys row * n_codes + item of everything a row must not receive."""
    keys = rows.row_ids() * n_codes + rows.items
    if extra is not None:
        keys = np.concatenate([keys, extra.row_ids() * n_codes + extra.items])
    return np.unique(keys)


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Membership of ``keys`` in a sorted array (one binary search each, no hashing)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[pos] == keys


def _first_occurrence(keys: np.ndarray) -> np.ndarray:
    """True at the first occurrence of each value of ``keys`` (in array order)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first_sorted = np.ones(len(keys), dtype=bool)
    first_sorted[1:] = ordered[1:] != ordered[:-1]
    first = np.empty(len(keys), dtype=bool)
    first[order] = first_sorted
    return first


def sample_negatives(
    exclude: Sequences,
    n_items: int,
    n_negatives: int,
    weights: np.ndarray | None = None,
    seed: int = 12345,
    also_exclude: Sequences | None = None,
) -> np.ndarray:
    """``n_negatives`` distinct item codes per row of ``exclude``, none of them in that row.

    ``weights`` (n_items + 1,) gives the sampling weight of each code (index 0 is ignored);
    None means uniform. Returns (R, n_negatives) int64. A row that cannot be filled (fewer than
    ``n_negatives`` allowed items) is an error.
    """
    n_rows, n_codes = len(exclude), n_items + 1
    if weights is None:
        p = np.ones(n_codes)
    else:
        p = np.asarray(weights, dtype=np.float64).copy()
        if p.shape != (n_codes,):
            raise ValueError(f"weights must have shape ({n_codes},), got {p.shape}")
    p[0] = 0.0
    p /= p.sum()
    forbidden = _forbidden_keys(exclude, also_exclude, n_codes)
    allowed = n_items - np.bincount(forbidden // n_codes, minlength=n_rows)
    forbidden_positive = np.bincount(
        forbidden // n_codes, weights=p[forbidden % n_codes] > 0, minlength=n_rows
    )
    short = (allowed < n_negatives) | (np.count_nonzero(p) - forbidden_positive < n_negatives)
    if short.any():
        row = int(np.flatnonzero(short)[0])
        raise ValueError(
            f"row {row} has fewer than {n_negatives} items left to sample negatives from"
        )

    rng = np.random.default_rng(seed)
    out = np.zeros((n_rows, n_negatives), dtype=np.int64)
    filled = np.zeros(n_rows, dtype=np.int64)
    todo = np.arange(n_rows)
    while len(todo):
        draws = rng.choice(n_codes, size=(len(todo), 2 * n_negatives), p=p)  # (T, 2N)
        rows = np.repeat(todo, draws.shape[1])
        keys = rows * n_codes + draws.ravel()
        ok = ~_contains(forbidden, keys) & _first_occurrence(keys)
        # rows stay grouped and in draw order: take as many as each row still needs
        keys, rows = keys[ok], rows[ok]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
        take = rank < (n_negatives - filled[rows])
        out[rows[take], filled[rows[take]] + rank[take]] = keys[take] % n_codes
        np.add.at(filled, rows[take], 1)
        todo = np.flatnonzero(filled < n_negatives)
        if len(todo):
            forbidden = np.sort(np.concatenate([forbidden, keys[take]]))
    return out
