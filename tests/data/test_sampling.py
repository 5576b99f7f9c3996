"""Sampled negatives: distinct, never the user's items, reproducible, popularity-shaped."""

import numpy as np
import pytest

from seqrec.data.corpus import Sequences
from seqrec.data.sampling import sample_negatives


def make_rows(seed: int, n_rows: int = 300, n_items: int = 200) -> Sequences:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 30, n_rows)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return Sequences(offsets, rng.integers(1, n_items + 1, offsets[-1]))


def test_negatives_are_distinct_and_avoid_each_users_items():
    rows, targets = make_rows(0), make_rows(1)
    negatives = sample_negatives(rows, 200, 50, seed=3, also_exclude=targets)
    assert negatives.shape == (300, 50)
    for r in range(300):
        drawn = set(negatives[r].tolist())
        assert len(drawn) == 50
        assert 0 not in drawn
        assert not drawn & set(rows.row(r).tolist())
        assert not drawn & set(targets.row(r).tolist())


def test_same_seed_same_sample_and_other_seed_other_sample():
    rows = make_rows(0)
    a = sample_negatives(rows, 200, 20, seed=5)
    assert np.array_equal(a, sample_negatives(rows, 200, 20, seed=5))
    assert not np.array_equal(a, sample_negatives(rows, 200, 20, seed=6))


def test_popularity_sampling_follows_the_weights():
    offsets = np.zeros(2001, dtype=np.int64)  # 2,000 users with no history
    rows = Sequences(offsets, np.zeros(0, dtype=np.int64))
    weights = np.zeros(11)
    weights[1:] = np.arange(1, 11)  # item i has weight i
    negatives = sample_negatives(rows, 10, 1, weights, seed=0)
    freq = np.bincount(negatives.ravel(), minlength=11)[1:] / 2000
    assert np.allclose(freq, np.arange(1, 11) / 55, atol=0.02)
    assert not np.isin(negatives, [0]).any()


def test_zero_weight_items_are_never_drawn():
    rows = Sequences(np.zeros(101, dtype=np.int64), np.zeros(0, dtype=np.int64))
    weights = np.array([0, 0, 1, 1, 1, 0, 1], dtype=float)
    negatives = sample_negatives(rows, 6, 4, weights, seed=0)
    assert set(np.unique(negatives).tolist()) == {2, 3, 4, 6}


def test_too_few_items_left_is_an_error_naming_the_row():
    rows = Sequences(np.array([0, 1, 9]), np.array([1, 1, 2, 3, 4, 5, 6, 7, 8]))
    with pytest.raises(ValueError, match="row 1 has fewer than 3"):
        sample_negatives(rows, 10, 3, seed=0)
