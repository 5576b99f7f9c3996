"""Training windows from ``Split.train`` and the loader that batches them.

Windows are built once, vectorised: each user's newest ``seq_len`` training items, plus (with a
``step``) older windows ending ``step``, ``2 * step``, ... items earlier, down to the window that
starts at the user's first item. With ``prefixes`` (models that train on each window's last item
only, such as the CTR models, set ``train_on_prefixes``), older windows go on past that one, down
to the shortest window: with step 1 every prefix of at least two items ends a window. Only
``Split.train`` is read, so validation and test targets never reach a window. Masking is the
model's job (with the training generator), so ``dupe_factor`` copies of a window are masked
differently: the sampler simply visits every window that many times. With ``last_item_copy``
every window is visited once more per epoch, marked to be trained on its newest item only, as the
BERT4Rec authors' data generation adds one such copy of each window.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from seqrec.batch import SequenceBatch
from seqrec.data.batching import pad_left, sorted_distinct
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


def window_end_labels(
    train: Sequences, seq_len: int, step: int | None = None, prefixes: bool = False
) -> np.ndarray:
    """The click label of each window's newest item (N,) float32, in ``training_windows``'
    order; ``train`` must carry labels (``data.click_labels``)."""
    if train.labels is None:
        raise ValueError("the training sequences carry no click labels")
    rows, ends = window_bounds(train.lengths, seq_len, step, prefixes)
    return train.labels[train.offsets[rows] + ends - 1]


WIDTH_STEP = 8  # bucketed batches are as wide as their longest window, rounded up to this


def bucket_widths(windows: np.ndarray) -> np.ndarray:
    """Each left-padded window's item count rounded up to ``WIDTH_STEP``, at most its width."""
    lengths = (windows != 0).sum(axis=1)
    return np.minimum(-(-lengths // WIDTH_STEP) * WIDTH_STEP, windows.shape[1])


def bucket_batch_rows(windows: np.ndarray, widths: np.ndarray, batch_size: int) -> np.ndarray:
    """Rows per batch of each width (indexed by width): about as many items as ``batch_size``
    windows of the mean length, so a bucket of short windows takes more rows.

    Models average their loss over a batch's targets: with ``batch_size`` rows in every bucket,
    a target in a batch of 3-item windows would weigh over 15 times more than one in a batch of
    50-item windows, where unbucketed batches weigh every target about equally.
    """
    lengths = (windows != 0).sum(axis=1)
    counts = np.bincount(widths)
    mean_length = np.bincount(widths, weights=lengths) / np.maximum(counts, 1)
    rows = np.rint(batch_size * lengths.mean() / np.maximum(mean_length, 1))
    return np.maximum(rows, 1).astype(np.int64)


class WindowBatches(Sampler[np.ndarray]):
    """Shuffled batches of visit ids over ``n * dupe_factor`` window visits, one order per epoch.

    Visit ``v`` is window ``v % n``, copy ``v // n`` (see ``WindowDataset``).

    The order depends only on (seed, epoch), so a resumed run sees the same batches as an
    uninterrupted one. Under data parallelism each rank takes every ``world_size``-th visit (or
    batch, with buckets).

    With ``widths`` (one per window, see :func:`bucket_widths`), every batch holds windows of one
    width only: the shuffled visits are grouped by width (keeping their random order), cut into
    batches of ``rows[width]`` visits (default ``batch_size``; see :func:`bucket_batch_rows`) and
    the batches shuffled. On data whose histories are much shorter than the window (Beauty: 8.8
    items on average, windows of 50) most of an unbucketed batch is padding.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        dupe_factor: int = 1,
        rank: int = 0,
        world_size: int = 1,
        widths: np.ndarray | None = None,
        rows: np.ndarray | None = None,
    ) -> None:
        self.n, self.batch_size, self.seed, self.dupe_factor = n, batch_size, seed, dupe_factor
        self.rank, self.world_size, self.epoch = rank, world_size, 0
        self.widths = widths
        if widths is not None and rows is None:
            rows = np.full(int(widths.max()) + 1, batch_size, dtype=np.int64)
        self.rows = rows

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _visits(self) -> int:
        total = self.n * self.dupe_factor
        return total // self.world_size  # equal batch counts on every rank

    def _bucketed_batches(self) -> int:
        """Batches of all ranks: each width's visits cut into batches of ``rows[width]``."""
        counts = np.bincount(self.widths) * self.dupe_factor
        return int((-(-counts // self.rows[: len(counts)])).sum())

    def __len__(self) -> int:
        if self.widths is not None:
            return self._bucketed_batches() // self.world_size
        return -(-self._visits() // self.batch_size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n * self.dupe_factor, generator=generator).numpy()
        if self.widths is not None:
            yield from self._iter_buckets(order, generator)
            return
        mine = order[self.rank :: self.world_size][: self._visits()]
        for start in range(0, len(mine), self.batch_size):
            yield mine[start : start + self.batch_size]

    def _iter_buckets(self, visits: np.ndarray, generator: torch.Generator):
        widths = self.widths[visits % self.n]
        by_width = np.argsort(widths, kind="stable")  # the random order kept within a width
        grouped, widths = visits[by_width], widths[by_width]
        group_start = np.flatnonzero(np.r_[True, widths[1:] != widths[:-1]])
        group_end = np.r_[group_start[1:], len(grouped)]
        rows = self.rows[widths[group_start]]
        starts = np.concatenate(  # one range per width (a handful), not per window
            [np.arange(a, b, r) for a, b, r in zip(group_start, group_end, rows, strict=True)]
        )
        group = np.searchsorted(group_start, starts, side="right") - 1
        ends = np.minimum(starts + rows[group], group_end[group])
        order = torch.randperm(len(starts), generator=generator).numpy()
        mine = order[self.rank :: self.world_size][: len(self)]
        for b in mine:
            yield grouped[starts[b] : ends[b]]


class WindowDataset(torch.utils.data.Dataset):
    """Indexed by an array of visit ids; returns a whole ``SequenceBatch`` (no collation).

    Visit ``v`` is window ``v % len(windows)``; with ``last_item_copy_from`` set, visits of copy
    ``v // len(windows)`` at or above it are marked to train on their newest item only
    (``SequenceBatch.last_item_only``). Rows are gathered with NumPy: torch's multi-threaded
    advanced indexing costs milliseconds per batch on a busy machine, NumPy's microseconds.
    """

    def __init__(
        self,
        windows: np.ndarray,
        users: np.ndarray,
        seen: Sequences | None = None,
        widths: np.ndarray | None = None,
        last_item_copy_from: int | None = None,
        labels: np.ndarray | None = None,
    ) -> None:
        self.windows, self.users, self.seen, self.widths = windows, users, seen, widths
        self.last_item_copy_from = last_item_copy_from
        self.labels = labels

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, visits: np.ndarray) -> SequenceBatch:
        index = visits % len(self.windows)
        last_only = None
        if self.last_item_copy_from is not None:
            copy = visits // len(self.windows)
            last_only = torch.from_numpy(copy >= self.last_item_copy_from)  # (B,)
        rows = self.windows[index]  # (B, L)
        if self.widths is not None:  # a bucketed batch: only as wide as its windows need
            rows = rows[:, rows.shape[1] - int(self.widths[index].max()) :]
        item_seq = torch.from_numpy(np.ascontiguousarray(rows))  # (B, L')
        users = self.users[index]
        seen = None
        if self.seen is not None:  # each user's sorted distinct items, 0-padded in front
            width = max(int(self.seen.lengths[users].max(initial=0)), 1)
            seen = torch.from_numpy(pad_left(self.seen, users, width))  # (B, S)
        if self.labels is not None:  # labelled impressions: history, shown item, its label
            return SequenceBatch(
                item_seq[:, :-1], torch.from_numpy(users), seen=seen, last_item_only=last_only,
                target_item=item_seq[:, -1], label=torch.from_numpy(self.labels[index]),
            )  # fmt: skip
        return SequenceBatch(item_seq, torch.from_numpy(users), seen=seen, last_item_only=last_only)


class WindowDataModule(L.LightningDataModule):
    """Training batches of windows for any model (``seq_len`` is the model's ``train_seq_len``).

    ``with_seen`` adds each user's distinct training items to every batch
    (``SequenceBatch.seen``), for models that draw negatives outside them. ``length_buckets``
    batches windows of similar length together, each batch only as wide as it needs (models
    read positions counted back from the newest item, so the padding they lose changed nothing)
    and holding about as many items as an unbucketed batch (:func:`bucket_batch_rows`).
    ``last_item_copy`` adds one visit of every window per epoch, after its ``dupe_factor``
    masked ones, trained on its newest item only. ``click_labels`` (models that set
    ``trains_on_click_labels``, on data with ``data.click_labels``) makes every batch labelled
    impressions: each window's older items are the history, its newest item the shown item, with
    that interaction's label (``SequenceBatch.target_item`` and ``label``).
    """

    def __init__(
        self,
        train: Sequences,
        seq_len: int,
        batch_size: int,
        seed: int,
        step: int | None = None,
        dupe_factor: int = 1,
        num_workers: int = 0,
        with_seen: bool = False,
        length_buckets: bool = False,
        last_item_copy: bool = False,
        prefixes: bool = False,
        click_labels: bool = False,
    ) -> None:
        super().__init__()
        windows, users = training_windows(train, seq_len, step, prefixes)
        if len(windows) == 0:
            raise ValueError(f"no training sequence has at least {MIN_WINDOW} items")
        seen = sorted_distinct(train) if with_seen else None
        self.widths = bucket_widths(windows) if length_buckets else None
        self.rows = bucket_batch_rows(windows, self.widths, batch_size) if length_buckets else None
        copy_from = dupe_factor if last_item_copy else None
        labels = window_end_labels(train, seq_len, step, prefixes) if click_labels else None
        self.dataset = WindowDataset(windows, users, seen, self.widths, copy_from, labels)
        self.batch_size, self.seed = batch_size, seed
        self.dupe_factor = dupe_factor + (1 if last_item_copy else 0)  # visits per window
        self.num_workers = num_workers

    def batches_per_epoch(self, world_size: int = 1) -> int:
        return len(self._sampler(0, world_size))

    def _sampler(self, rank: int, world_size: int) -> WindowBatches:
        return WindowBatches(
            len(self.dataset), self.batch_size, self.seed, self.dupe_factor, rank, world_size,
            self.widths, self.rows,
        )  # fmt: skip

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
