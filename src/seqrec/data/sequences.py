"""Rows of item codes in CSR form, the one layout every part of seqrec passes sequences in.

Kept apart from the corpus builder (and its polars import) so that serving and batching code can
use it with numpy alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD = 0  # item code 0 is padding; real items are 1..n_items; the mask token is n_items + 1


@dataclass(frozen=True)
class Sequences:
    """Rows of item codes in CSR form: row ``r`` is ``items[offsets[r]:offsets[r + 1]]``.

    ``timestamps`` is aligned with ``items`` (or None when the source had no time), and so are
    ``labels``, the click label of each interaction (1 clicked, 0 not) when the data gives them
    (``data.click_labels``); every selection of positions carries both along.
    """

    offsets: np.ndarray  # (R + 1,) int64
    items: np.ndarray  # (nnz,) int64
    timestamps: np.ndarray | None = None  # (nnz,) float64
    labels: np.ndarray | None = None  # (nnz,) float32, 0 or 1

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or self.offsets[0] != 0 or self.offsets[-1] != len(self.items):
            raise ValueError("offsets must start at 0 and end at len(items)")
        for name in ("timestamps", "labels"):
            aligned = getattr(self, name)
            if aligned is not None and len(aligned) != len(self.items):
                raise ValueError(f"{len(aligned)} {name} for {len(self.items)} items")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, r: int) -> np.ndarray:
        return self.items[self.offsets[r] : self.offsets[r + 1]]

    def take(self, rows: np.ndarray) -> Sequences:
        """The given rows, in the given order, as a new CSR block (vectorised gather)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, lengths = self.offsets[rows], self.lengths[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        index = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return self.at_positions(offsets, index)

    def slice_rows(self, start: np.ndarray, stop: np.ndarray) -> Sequences:
        """Per row, keep positions ``start[r]:stop[r]`` (relative to the row; clipped)."""
        lengths = self.lengths
        start = np.clip(np.asarray(start, dtype=np.int64), 0, lengths)
        stop = np.clip(np.asarray(stop, dtype=np.int64), start, lengths)
        new_len = stop - start
        offsets = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(new_len, out=offsets[1:])
        shift = self.offsets[:-1] + start - offsets[:-1]
        index = np.repeat(shift, new_len) + np.arange(offsets[-1])
        return self.at_positions(offsets, index)

    def at_positions(self, offsets: np.ndarray, index: np.ndarray) -> Sequences:
        """The stored positions ``index`` (an int array or a boolean mask) as rows ``offsets``,
        with their timestamps and labels."""
        stamps = None if self.timestamps is None else self.timestamps[index]
        labels = None if self.labels is None else self.labels[index]
        return Sequences(offsets, self.items[index], stamps, labels)

    def row_ids(self) -> np.ndarray:
        """The row of every stored item, aligned with ``items``."""
        return np.repeat(np.arange(len(self)), self.lengths)
