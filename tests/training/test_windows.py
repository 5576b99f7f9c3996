"""Training windows: what goes into them (never an evaluation target) and how they are visited."""

from __future__ import annotations

import numpy as np
import pytest

from seqrec.data.corpus import SequenceCorpus, Sequences, Vocabulary
from seqrec.data.splits import leave_one_out
from seqrec.training.data import WindowBatches, WindowDataModule, training_windows, window_bounds


def _position_corpus(lengths: list[int]) -> SequenceCorpus:
    """Item code = position in the user's sequence + 1, so a window reveals where it came from."""
    lengths_arr = np.array(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths_arr)])
    items = np.concatenate([np.arange(1, n + 1) for n in lengths_arr])
    seqs = Sequences(offsets, items, items.astype(np.float64))
    n_items = int(lengths_arr.max())
    users = Vocabulary(np.array([f"u{i}" for i in range(len(lengths))]))
    return SequenceCorpus(seqs, users, Vocabulary(np.arange(1, n_items + 1).astype(str), offset=1))


def test_window_bounds_step_reaches_the_first_item():
    rows, ends = window_bounds(np.array([10, 1, 4, 0]), seq_len=4, step=3)
    assert rows.tolist() == [0, 0, 0, 2]
    assert ends.tolist() == [10, 7, 4, 4]  # 10-6=4 already reaches back to position 0


def test_windows_hold_the_newest_items_left_padded():
    seqs = Sequences(np.array([0, 5, 7]), np.array([1, 2, 3, 4, 5, 6, 7]))
    windows, users = training_windows(seqs, seq_len=3)
    assert windows.tolist() == [[3, 4, 5], [0, 6, 7]]
    assert users.tolist() == [0, 1]


@pytest.mark.parametrize("step", [None, 1, 2, 5])
def test_no_window_reaches_a_validation_or_test_position(step):
    lengths = np.array([3, 4, 9, 15, 30, 2])  # user 5 is too short to be evaluated
    split = leave_one_out(_position_corpus(lengths.tolist()))
    windows, users = training_windows(split.train, seq_len=6, step=step)
    evaluated = lengths[users] >= 3
    valid_position = lengths[users] - 2  # 0-based position of the validation target
    latest = windows.max(axis=1) - 1  # newest position in each window
    assert (latest[evaluated] < valid_position[evaluated]).all()
    # user 0 keeps a single training item (no window); every other user's newest one is used
    assert set(users[latest == valid_position - 1]) == {1, 2, 3, 4}
    assert set(users) == {1, 2, 3, 4, 5}


def test_step_windows_cover_every_training_position():
    corpus = _position_corpus([40])
    train = leave_one_out(corpus).train  # positions 0..37
    windows, _ = training_windows(train, seq_len=10, step=7)
    covered = set(windows[windows > 0].tolist())
    assert covered == set(range(1, 39))
    assert windows.shape == (5, 10)  # ends 38, 31, 24, 17, 10


def test_sampler_visits_each_window_dupe_factor_times_and_is_seeded_by_epoch():
    sampler = WindowBatches(n=10, batch_size=4, seed=3, dupe_factor=3)
    first = np.concatenate(list(sampler))  # visit ids: window v % 10, copy v // 10
    assert np.bincount(first, minlength=30).tolist() == [1] * 30
    assert np.bincount(first % 10, minlength=10).tolist() == [3] * 10
    assert len(sampler) == 8  # ceil(30 / 4)
    again = np.concatenate(list(WindowBatches(n=10, batch_size=4, seed=3, dupe_factor=3)))
    sampler.set_epoch(1)
    other_epoch = np.concatenate(list(sampler))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other_epoch)


def test_sampler_shards_disjoint_across_ranks():
    shards = [
        np.concatenate(list(WindowBatches(n=9, batch_size=2, seed=0, rank=r, world_size=2)))
        for r in range(2)
    ]
    assert len(shards[0]) == len(shards[1]) == 4  # 9 // 2 each, equal batch counts
    assert not set(shards[0]) & set(shards[1])


def test_data_module_batches_are_sequence_batches():
    corpus = _position_corpus([8, 8, 8])
    module = WindowDataModule(
        leave_one_out(corpus).train, seq_len=4, batch_size=2, seed=0, dupe_factor=2
    )
    batches = list(module.train_dataloader())
    assert module.batches_per_epoch() == len(batches) == 3
    assert batches[0].item_seq.shape == (2, 4)
    assert sorted(np.concatenate([b.users.numpy() for b in batches]).tolist()) == [0, 0, 1, 1, 2, 2]


def test_seen_items_are_each_users_distinct_training_items_only():
    # user 0: items 5 3 5 8 | valid 2 | test 9 (leave-one-out); user 1: 4 4 1 | 7 | 6
    seqs = Sequences(np.array([0, 6, 11]), np.array([5, 3, 5, 8, 2, 9, 4, 4, 1, 7, 6]))
    users = Vocabulary(np.array(["a", "b"]))
    items = Vocabulary(np.arange(1, 10).astype(str), offset=1)
    split = leave_one_out(SequenceCorpus(seqs, users, items))
    module = WindowDataModule(split.train, seq_len=3, batch_size=4, seed=0, with_seen=True)
    batch = module.dataset[np.array([1, 0, 1])]
    assert batch.users.tolist() == [1, 0, 1]
    # sorted and distinct, 0-padded in front; the validation and test items (2, 9, 7, 6) absent
    assert batch.seen.tolist() == [[0, 1, 4], [3, 5, 8], [0, 1, 4]]
    plain = WindowDataModule(split.train, seq_len=3, batch_size=4, seed=0)
    assert plain.dataset[np.array([0])].seen is None


def test_length_buckets_batch_windows_of_one_width_and_drop_only_padding():
    lengths = [3, 20, 5, 30, 12, 4, 9, 33, 2, 17]  # training lengths after leave-one-out: -2
    module = WindowDataModule(
        leave_one_out(_position_corpus([n + 2 for n in lengths])).train,
        seq_len=24, batch_size=3, seed=1, dupe_factor=2, length_buckets=True,
    )  # fmt: skip
    full = module.dataset.windows
    batches = list(module.train_dataloader())
    assert module.batches_per_epoch() == len(batches)
    visits = np.concatenate([b.users.numpy() for b in batches])
    assert np.bincount(visits).tolist() == [2] * 10  # every window dupe_factor times
    for batch in batches:
        width = batch.item_seq.shape[1]
        assert width % 8 == 0 or width == 24
        # one window per user here, so a window's index is its user; the columns cut away
        # were padding for every window of the batch
        assert (full[batch.users.numpy()][:, : 24 - width] == 0).all()
        assert np.array_equal(full[batch.users.numpy()][:, 24 - width :], batch.item_seq.numpy())
        counts = (batch.item_seq != 0).sum(1)
        assert (-(-counts // 8) * 8).clamp(max=24).unique().numel() == 1  # one width per batch
    sampler = module._sampler(0, 1)
    sampler.set_epoch(1)
    again = [b.tolist() for b in sampler]
    assert again != [b.users.tolist() for b in batches]  # reshuffled by epoch


def test_length_buckets_hold_about_an_unbucketed_batch_of_items():
    # 40 windows of 3 items and 10 of 40: an unbucketed batch of 8 holds 8 x 10.4 items on average
    lengths = [3] * 40 + [40] * 10
    module = WindowDataModule(
        leave_one_out(_position_corpus([n + 2 for n in lengths])).train,
        seq_len=48, batch_size=8, seed=0, length_buckets=True,
    )  # fmt: skip
    batches = list(module.train_dataloader())
    items = {len(b): int((b.item_seq != 0).sum()) for b in batches}
    assert items == {28: 84, 12: 36, 2: 80}  # 28 + 12 short windows, 5 batches of 2 long ones
    assert sorted(len(b) for b in batches) == [2] * 5 + [12, 28]
    assert module.batches_per_epoch() == len(batches)


def test_length_buckets_shard_whole_batches_across_ranks():
    widths = np.array([8, 8, 16, 16, 16, 24, 8, 24])
    shards = [
        list(WindowBatches(8, 2, seed=0, rank=r, world_size=2, widths=widths)) for r in range(2)
    ]
    assert len(shards[0]) == len(shards[1]) == 2  # 5 batches of one width: 2 per rank
    seen = np.concatenate([np.concatenate(s) for s in shards])
    assert len(set(seen.tolist())) == len(seen)


def test_last_item_copies_add_one_marked_visit_of_every_window():
    corpus = _position_corpus([8, 6, 9])
    train = leave_one_out(corpus).train
    module = WindowDataModule(train, seq_len=4, batch_size=2, seed=0, dupe_factor=2,
                              last_item_copy=True)  # fmt: skip
    batches = list(module.train_dataloader())
    assert module.batches_per_epoch() == len(batches) == 5  # 3 windows x (2 + 1) visits
    marked = np.concatenate([b.last_item_only.numpy() for b in batches])
    users = np.concatenate([b.users.numpy() for b in batches])
    assert sorted(users[marked].tolist()) == [0, 1, 2]  # one marked copy per window
    assert sorted(users[~marked].tolist()) == [0, 0, 1, 1, 2, 2]
    assert WindowDataModule(train, 4, 2, 0).dataset[np.array([0])].last_item_only is None
