"""Training windows from ``Split.train`` and the loader that batches them.

Windows are built once, vectorised: each user's newest ``seq_len`` training items, plus (with a
``step``) older windows ending ``step``, ``2 * step``, ... items earlier, down to the window that
starts at the user's first item. With ``prefixes`` (models that train on each window's last item
only, such as the CTR models, set ``train_on_prefixes``), older windows go on past that one, down
to the shortest window: with step 1 every prefix of at least two items ends a window. Only
``Split.train`` is read, so validation and test targets never reach a window. Masking is the
model's job (with the training generator), so ``dupe_factor`` copies of a window are masked
differently: the sampler simply visits every window that many times.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from seqrec.batch import SequenceBatch
from seqrec.data.batching import pad_left
from seqrec.data.corpus import Sequences

MIN_WINDOW = 2  # a window of one item has nothing to learn from its neighbours


def window_bounds(
    lengths: np.ndarray, seq_len: int, step: int | None = None, prefixes: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(row, end) of every window: rows with >= MIN_WINDOW items, ends newest first per row.

    >>> rows, ends = window_bounds(np.array([7, 1, 3]), seq_len=4, step=2)
    >>> rows.tolist(), ends.tolist()
    ([0, 0, 0, 2], [7, 5, 4, 3])
    >>> rows, ends = window_bounds(np.array([7, 1, 3]), seq_len=4, step=2, prefixes=True)
    >>> rows.tolist(), ends.tolist()
    ([0, 0, 0, 2], [7, 5, 3, 3])
    """
    rows = np.flatnonzero(lengths >= MIN_WINDOW)
    n = lengths[rows]
    if step is None:
        extra = np.zeros_like(n)
    elif prefixes:
        extra = (n - MIN_WINDOW) // step  # every step-th end down to the shortest window
    else:
        extra = -(-np.maximum(n - seq_len, 0) // step)
    counts = extra + 1
    row_of = np.repeat(rows, counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    k = np.arange(len(row_of)) - first  # 0 for the newest window of a row
    n_of = np.repeat(n, counts)
    ends = n_of - k * (step or 0)
    if not prefixes:
        # the oldest window starts at the first item instead of running past it
        ends = np.maximum(ends, np.minimum(n_of, seq_len))
    return row_of, ends


def training_windows(
    train: Sequences, seq_len: int, step: int | None = None, prefixes: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded windows (N, seq_len) int64 and the user code of each (N,)."""
    rows, ends = window_bounds(train.lengths, seq_len, step, prefixes)
    block = train.take(rows).slice_rows(ends - seq_len, ends)
    return pad_left(block, np.arange(len(block)), seq_len), rows


class WindowBatches(Sampler[np.ndarray]):
    """Shuffled index batches over ``n * dupe_factor`` window visits, one order per epoch.

    The order depends only on (seed, epoch), so a resumed run sees the same batches as an
    uninterrupted one. Under data parallelism each rank takes every ``world_size``-th visit.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        dupe_factor: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.n, self.batch_size, self.seed, self.dupe_factor = n, batch_size, seed, dupe_factor
        self.rank, self.world_size, self.epoch = rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _visits(self) -> int:
        total = self.n * self.dupe_factor
        return total // self.world_size  # equal batch counts on every rank

    def __len__(self) -> int:
        return -(-self._visits() // self.batch_size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n * self.dupe_factor, generator=generator).numpy()
        mine = order[self.rank :: self.world_size][: self._visits()] % self.n
        for start in range(0, len(mine), self.batch_size):
            yield mine[start : start + self.batch_size]


class WindowDataset(torch.utils.data.Dataset):
    """Indexed by an array of window indices; returns a whole ``SequenceBatch`` (no collation).

    Rows are gathered with NumPy: torch's multi-threaded advanced indexing costs milliseconds
    per batch on a busy machine, NumPy's costs microseconds.
    """

    def __init__(self, windows: np.ndarray, users: np.ndarray) -> None:
        self.windows, self.users = windows, users

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: np.ndarray) -> SequenceBatch:
        item_seq = torch.from_numpy(self.windows[index])  # (B, L)
        return SequenceBatch(item_seq=item_seq, users=torch.from_numpy(self.users[index]))


class WindowDataModule(L.LightningDataModule):
    """Training batches of windows for any model (``seq_len`` is the model's ``train_seq_len``)."""

    def __init__(
        self,
        train: Sequences,
        seq_len: int,
        batch_size: int,
        seed: int,
        step: int | None = None,
        dupe_factor: int = 1,
        num_workers: int = 0,
        prefixes: bool = False,
    ) -> None:
        super().__init__()
        windows, users = training_windows(train, seq_len, step, prefixes)
        if len(windows) == 0:
            raise ValueError(f"no training sequence has at least {MIN_WINDOW} items")
        self.dataset = WindowDataset(windows, users)
        self.batch_size, self.seed, self.dupe_factor = batch_size, seed, dupe_factor
        self.num_workers = num_workers

    def batches_per_epoch(self, world_size: int = 1) -> int:
        return len(self._sampler(0, world_size))

    def _sampler(self, rank: int, world_size: int) -> WindowBatches:
        return WindowBatches(
            len(self.dataset), self.batch_size, self.seed, self.dupe_factor, rank, world_size
        )

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return DataLoader(
            self.dataset,
            sampler=self._sampler(rank, world),
            batch_size=None,  # the dataset returns whole batches
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            # its own generator, so creating an iterator leaves the global RNG (dropout) alone
            generator=torch.Generator().manual_seed(self.seed),
        )
