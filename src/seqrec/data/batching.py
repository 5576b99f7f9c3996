"""Vectorised conversion of CSR rows into fixed-width, left-padded id matrices.

Left padding keeps every user's newest item in the last column, so "predict the next item" reads
one fixed column for every model. Building a batch never loops over rows in Python.
"""

from __future__ import annotations

import numpy as np

from seqrec.data.sequences import PAD, Sequences


def pad_left(
    seqs: Sequences, rows: np.ndarray, max_len: int, append: int | None = None
) -> np.ndarray:
    """The newest ``max_len`` items of each row in ``rows``, left-padded with 0: (B, max_len) int64.

    ``append`` (e.g. the mask token) is written after the newest item and counts towards
    ``max_len``, so the row then holds the newest ``max_len - 1`` items followed by ``append``.

    >>> s = Sequences(np.array([0, 3, 4]), np.array([5, 6, 7, 8]))
    >>> pad_left(s, np.array([0, 1]), 2).tolist()
    [[6, 7], [0, 8]]
    >>> pad_left(s, np.array([1]), 3, append=9).tolist()
    [[0, 8, 9]]
    """
    rows = np.asarray(rows, dtype=np.int64)
    width = max_len if append is None else max_len - 1
    ends = seqs.offsets[rows + 1]
    lengths = np.minimum(ends - seqs.offsets[rows], width)
    out = np.full((len(rows), max_len), PAD, dtype=np.int64)
    # column j of row b holds items[end_b - width + j] when that position lies inside the row
    cols = np.arange(width)
    src = ends[:, None] - width + cols[None, :]  # (B, width)
    valid = cols[None, :] >= (width - lengths)[:, None]  # (B, width)
    out[:, :width][valid] = seqs.items[src[valid]]
    if append is not None:
        out[:, -1] = append
    return out


def pad_targets(seqs: Sequences, rows: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
    """All items of each row, right-padded with 0 to the longest row: (B, T) int64; or, given
    ``values`` aligned with ``seqs.items`` (e.g. its labels), those values in the same places."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, lengths = seqs.offsets[rows], seqs.lengths[rows]
    width = max(int(lengths.max(initial=0)), 1)
    cols = np.arange(width)
    valid = cols[None, :] < lengths[:, None]  # (B, T)
    source = seqs.items if values is None else values
    out = np.full((len(rows), width), PAD, dtype=source.dtype)
    out[valid] = source[(starts[:, None] + cols[None, :])[valid]]
    return out


def history_coo(seqs: Sequences, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(batch_row, item) pairs of every item in the given rows, to mask a user's history."""
    block = seqs.take(rows)
    return block.row_ids(), block.items


def sorted_distinct(seqs: Sequences) -> Sequences:
    """Each row's distinct items in ascending order (one sort of row-keyed codes, no row loop).

    >>> s = sorted_distinct(Sequences(np.array([0, 4, 5]), np.array([7, 3, 7, 5, 2])))
    >>> s.offsets.tolist(), s.items.tolist()
    ([0, 3, 4], [3, 5, 7, 2])
    """
    rows = seqs.row_ids()
    width = int(seqs.items.max(initial=0)) + 1
    keys = np.unique(rows * width + seqs.items)  # sorted by row, then item
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // width, minlength=len(seqs)), out=offsets[1:])
    return Sequences(offsets, (keys % width).astype(np.int64))
