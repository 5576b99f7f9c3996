"""Splits keep every evaluation target out of training, whatever the corpus looks like."""

import numpy as np
import polars as pl
import pytest

from seqrec.data.corpus import SequenceCorpus, Sequences, Vocabulary, build_corpus
from seqrec.data.splits import labelled_split, leave_one_out, temporal_split, time_quantile


def random_corpus(seed: int, n_users: int = 60, n_items: int = 40):
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 12, n_users)
    users = np.repeat(np.arange(n_users), n).astype(str)
    frame = pl.DataFrame(
        {
            "user": users,
            "item": rng.integers(0, n_items, n.sum()).astype(str),
            "timestamp": rng.integers(0, 50, n.sum()).astype(float),  # many ties
        }
    )
    return build_corpus(frame)


@pytest.mark.parametrize("seed", range(5))
def test_leave_one_out_targets_are_the_last_two_positions_and_absent_from_training(seed):
    corpus = random_corpus(seed)
    split = leave_one_out(corpus)
    seqs = corpus.sequences
    for row, user in enumerate(split.test.users):
        full = seqs.row(user)
        assert split.test.targets.row(row).tolist() == [full[-1]]
        assert split.valid.targets.row(row).tolist() == [full[-2]]
        assert split.test.context.row(row).tolist() == full[:-1].tolist()  # includes the valid item
        assert split.valid.context.row(row).tolist() == full[:-2].tolist()
        # training holds exactly the positions before the validation target
        assert split.train.row(user).tolist() == full[:-2].tolist()
    short = seqs.lengths < 3
    assert len(split.test) == int((~short).sum())
    for user in np.flatnonzero(short):
        assert split.train.row(user).tolist() == seqs.row(user).tolist()
    if short.any():
        assert str(int(short.sum())) in split.notes[0]


def test_leave_one_out_training_positions_never_reach_a_target_position():
    corpus = random_corpus(7)
    split = leave_one_out(corpus)
    n = corpus.sequences.lengths
    # training rows are prefixes: their length stops before the validation position
    evaluable = n >= 3
    assert (split.train.lengths[evaluable] == n[evaluable] - 2).all()


def test_temporal_split_respects_the_cutoffs():
    corpus = random_corpus(3)
    t_valid, t_test = time_quantile(corpus, 0.6), time_quantile(corpus, 0.8)
    split = temporal_split(corpus, t_test, t_valid, targets="all")
    seqs = corpus.sequences
    assert (split.train.timestamps < t_valid).all()
    assert (
        (split.valid.targets.timestamps >= t_valid) & (split.valid.targets.timestamps < t_test)
    ).all()
    assert (split.test.targets.timestamps >= t_test).all()
    assert (split.test.context.timestamps < t_test).all()
    for row, user in enumerate(split.test.users):
        full_t = seqs.timestamps[seqs.offsets[user] : seqs.offsets[user + 1]]
        assert split.test.targets.lengths[row] == int((full_t >= t_test).sum())


def test_temporal_split_next_keeps_only_the_first_item_after_the_cutoff():
    corpus = random_corpus(4)
    t_test = time_quantile(corpus, 0.7)
    split = temporal_split(corpus, t_test)
    assert (split.test.targets.lengths == 1).all()
    assert "not test targets" in " ".join(split.notes)


def test_temporal_split_rejects_valid_after_test():
    corpus = random_corpus(4)
    with pytest.raises(ValueError, match="must not be after"):
        temporal_split(corpus, 10.0, 20.0)


def test_labelled_split_follows_the_labels():
    frame = pl.DataFrame(
        {
            "user": ["a", "a", "a", "b", "b", "b", "b"],
            "item": ["1", "2", "3", "1", "4", "5", "6"],
            "timestamp": [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0],
            "split": ["train", "valid", "test", "train", "train", "test", "test"],
        }
    )
    corpus = build_corpus(frame)
    labels = frame["split"].to_numpy()[corpus.source_rows]
    split = labelled_split(corpus, labels)
    decode = corpus.items.decode
    assert decode(split.train.row(0)).tolist() == ["1"]
    assert decode(split.train.row(1)).tolist() == ["1", "4"]
    assert len(split.valid) == 1 and decode(split.valid.targets.row(0)).tolist() == ["2"]
    assert decode(split.test.targets.row(1)).tolist() == ["5", "6"]
    assert decode(split.test.context.row(0)).tolist() == ["1", "2"]
    with pytest.raises(ValueError, match="train/valid/test"):
        labelled_split(corpus, np.array(["train"] * 6 + ["holdout"]))


def test_train_on_validation_moves_the_validation_item_into_training():
    from seqrec.data.splits import train_on_validation

    # users: 5 items, 2 items (not evaluated), 4 items
    seqs = Sequences(np.array([0, 5, 7, 11]), np.arange(1, 12))
    users = Vocabulary(np.array(["a", "b", "c"]))
    corpus = SequenceCorpus(seqs, users, Vocabulary(np.arange(1, 12).astype(str), offset=1))
    split = leave_one_out(corpus)
    merged = train_on_validation(split)
    assert [merged.train.row(u).tolist() for u in range(3)] == [[1, 2, 3, 4], [6, 7], [8, 9, 10]]
    assert len(merged.valid) == 0
    assert merged.test is split.test  # the test targets and their context do not change
    assert "no validation set" in merged.notes[-1]
