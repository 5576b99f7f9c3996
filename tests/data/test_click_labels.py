"""Click labels from the data stay with their interaction through filters, splits and windows."""

import numpy as np
import polars as pl
import pytest

from seqrec.config import ClickLabelsConfig
from seqrec.data.corpus import build_corpus
from seqrec.data.labels import with_click_labels
from seqrec.data.sequences import Sequences
from seqrec.data.splits import (
    leave_one_out,
    ratio_counts,
    ratio_split,
    temporal_split,
    train_on_validation,
)
from seqrec.errors import ConfigError, DataError
from seqrec.training.data import WindowDataModule, training_windows, window_end_labels


def rating_of(item: np.ndarray, timestamp: np.ndarray) -> np.ndarray:
    """The rating every row of ``random_frame`` gets: a function of its item and time only."""
    return (item.astype(np.int64) * 7 + timestamp.astype(np.int64)) % 5 + 1


def random_frame(seed: int, n_users: int = 50, n_items: int = 30) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 15, n_users)
    items = rng.integers(0, n_items, n.sum())
    stamps = rng.integers(0, 40, n.sum())  # many ties within a user
    return pl.DataFrame(
        {
            "user": np.repeat(np.arange(n_users), n).astype(str),
            "item": items.astype(str),
            "timestamp": stamps.astype(float),
            "rating": rating_of(items, stamps).astype(float),
        }
    ).sample(fraction=1.0, shuffle=True, seed=seed)  # file order is not time order


def expected_labels(corpus, seqs: Sequences) -> np.ndarray:
    """What the labels of ``seqs`` must be, from their items and times alone (rating >= 4)."""
    raw = corpus.items.decode(seqs.items).astype(np.int64)
    return (rating_of(raw, seqs.timestamps) >= 4).astype(np.float32)


def labelled_corpus(seed: int, **filters):
    frame = random_frame(seed)
    corpus = build_corpus(frame, **filters)
    return with_click_labels(corpus, frame, ClickLabelsConfig("rating", 4.0), "ratings.csv")


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "filters",
    [{}, {"min_user_interactions": 3, "min_item_interactions": 2}, {"max_len": 5}],
)
def test_every_interaction_keeps_its_own_label_through_filters_and_splits(seed, filters):
    corpus = labelled_corpus(seed, **filters)
    seqs = corpus.sequences
    assert np.array_equal(seqs.labels, expected_labels(corpus, seqs))
    times = seqs.timestamps
    splits = [
        leave_one_out(corpus),
        ratio_split(corpus, (0.6, 0.2, 0.2)),
        temporal_split(corpus, float(np.quantile(times, 0.8)), float(np.quantile(times, 0.6)),
                       targets="all"),
    ]  # fmt: skip
    splits.append(train_on_validation(splits[0]))
    for split in splits:
        parts = [split.train, split.test.context, split.test.targets]
        if len(split.valid):
            parts += [split.valid.context, split.valid.targets]
        for part in parts:
            assert part.labels is not None
            assert np.array_equal(part.labels, expected_labels(corpus, part))


def test_a_label_column_is_taken_as_it_is_and_must_hold_0_and_1() -> None:
    frame = pl.DataFrame(
        {"user": ["a", "a", "b", "b"], "item": ["x", "y", "x", "z"],
         "timestamp": [1.0, 2.0, 1.0, 2.0], "label": [1.0, 0.0, 0.0, 1.0]}
    )  # fmt: skip
    corpus = with_click_labels(build_corpus(frame), frame, ClickLabelsConfig("label"), "f.csv")
    assert corpus.sequences.labels.tolist() == [1.0, 0.0, 0.0, 1.0]
    assert "click labels: 2 clicked, 2 not clicked" in "\n".join(corpus.load_report())
    bad = frame.with_columns(pl.Series("label", [1.0, 0.0, 4.0, 1.0]))
    with pytest.raises(DataError, match=r"f\.csv: data row 3: .*'label' holds 4, expected 0 or 1"):
        with_click_labels(build_corpus(bad), bad, ClickLabelsConfig("label"), "f.csv")
    # with a threshold the same column is a score: 4 >= 1 is a click
    thresholded = with_click_labels(build_corpus(bad), bad, ClickLabelsConfig("label", 1.0), "f")
    assert thresholded.sequences.labels.tolist() == [1.0, 0.0, 1.0, 1.0]


def test_labels_that_cannot_be_used_are_one_line_errors() -> None:
    frame = pl.DataFrame(
        {"user": ["a", "a", "b"], "item": ["x", "y", "x"], "timestamp": [1.0, 2.0, 3.0],
         "rating": [5.0, 4.0, 4.0], "liked": ["yes", "1", "0"]}
    )  # fmt: skip
    corpus = build_corpus(frame)
    with pytest.raises(ConfigError, match="no column 'clicked'"):
        with_click_labels(corpus, frame, ClickLabelsConfig("clicked"), "f.csv")
    with pytest.raises(DataError, match=r"f\.csv: data row 1: .*'liked' holds 'yes', expected a"):
        with_click_labels(corpus, frame, ClickLabelsConfig("liked"), "f.csv")
    with pytest.raises(DataError, match=r"every one of the 3 interactions kept is clicked \(1\)"):
        with_click_labels(corpus, frame, ClickLabelsConfig("rating", 4.0), "f.csv")
    with pytest.raises(ConfigError, match=r"threshold: applies with data\.click_labels\.column"):
        ClickLabelsConfig(threshold=4.0)


def recbole_split_counts(total: int, ratios: list[float]) -> list[int]:
    """RecBole 1.2.1's ``Dataset._calcu_split_ids`` as counts, written out as its loop."""
    ratios = [r / sum(ratios) for r in ratios]
    cnt = [int(ratios[i] * total) for i in range(len(ratios))]
    cnt[0] = total - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


@pytest.mark.parametrize(
    "ratios", [(0.8, 0.1, 0.1), (0.7, 0.2, 0.1), (8, 1, 1), (0.9, 0.0, 0.1), (0.5, 0.3, 0.2)]
)
def test_ratio_counts_are_recboles_for_every_length(ratios) -> None:
    lengths = np.arange(0, 200)
    expected = [recbole_split_counts(int(n), list(ratios)) for n in lengths]
    assert ratio_counts(lengths, ratios).tolist() == expected


def test_the_ratio_split_holds_out_each_users_newest_interactions_in_order() -> None:
    corpus = labelled_corpus(0)
    split = ratio_split(corpus, (0.6, 0.2, 0.2))
    counts = ratio_counts(corpus.sequences.lengths, (0.6, 0.2, 0.2))
    valid_rows = dict(zip(split.valid.users.tolist(), range(len(split.valid)), strict=True))
    for row, user in enumerate(split.test.users):
        full = corpus.sequences.row(user).tolist()
        n_train, n_valid, n_test = counts[user]
        assert split.train.row(user).tolist() == full[:n_train]
        assert split.test.context.row(row).tolist() == full[: n_train + n_valid]
        assert split.test.targets.row(row).tolist() == full[n_train + n_valid :]
        assert n_test == len(full) - n_train - n_valid > 0
        if n_valid:
            v = valid_rows[user]
            assert split.valid.targets.row(v).tolist() == full[n_train : n_train + n_valid]
    assert len(split.test) == int((counts[:, 2] > 0).sum())


def test_each_training_window_carries_the_label_of_its_newest_item() -> None:
    rng = np.random.default_rng(3)
    n = rng.integers(1, 30, 40)
    offsets = np.r_[0, np.cumsum(n)]
    items = rng.integers(1, 60, offsets[-1])
    labels = (items % 3 == 0).astype(np.float32)  # the label is readable from the item
    train = Sequences(offsets, items, labels=labels)
    for step, prefixes in ((1, True), (4, True), (5, False), (None, False)):
        windows, _ = training_windows(train, 9, step, prefixes)
        ends = window_end_labels(train, 9, step, prefixes)
        assert np.array_equal(ends, (windows[:, -1] % 3 == 0).astype(np.float32))
    module = WindowDataModule(train, 9, 8, 0, step=1, prefixes=True, click_labels=True)
    windows, _ = training_windows(train, 9, 1, True)
    visits = np.arange(0, len(windows), 7)
    batch = module.dataset[visits]
    assert np.array_equal(batch.item_seq.numpy(), windows[visits, :-1])  # the history
    assert np.array_equal(batch.target_item.numpy(), windows[visits, -1])  # the shown item
    assert np.array_equal(batch.label.numpy(), (windows[visits, -1] % 3 == 0))
