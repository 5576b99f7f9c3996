from collections import Counter
from itertools import combinations

import numpy as np
import polars as pl
import pytest

from seqrec.data.corpus import Vocabulary, build_corpus, k_core
from seqrec.data.errors import DataError


def frame_of(
    rows: list[tuple[str, str, float]], ratings: list[float] | None = None
) -> pl.DataFrame:
    users, items, times = zip(*rows, strict=True)
    data = {"user": list(users), "item": list(items), "timestamp": [float(t) for t in times]}
    if ratings is not None:
        data["rating"] = ratings
    return pl.DataFrame(data)


def raw_sequences(corpus) -> dict[str, list[str]]:
    seqs = corpus.sequences
    return {
        str(corpus.users.decode(np.array([u]))[0]): corpus.items.decode(seqs.row(u)).tolist()
        for u in range(len(seqs))
    }


def test_time_order_and_equal_timestamps_keep_file_order():
    corpus = build_corpus(
        frame_of([("u", "c", 5), ("v", "a", 1), ("u", "a", 5), ("u", "b", 1), ("u", "d", 5)])
    )
    assert raw_sequences(corpus) == {"u": ["b", "c", "a", "d"], "v": ["a"]}
    assert corpus.sequences.timestamps.tolist() == [1, 5, 5, 5, 1]
    # codes follow first appearance in the file
    assert corpus.users.raw.tolist() == ["u", "v"]
    assert corpus.items.raw.tolist() == ["c", "a", "b", "d"]
    assert corpus.sequences.items.tolist() == [3, 1, 2, 4, 2]


def brute_force_core(rows: list[tuple[str, str]], min_user: int, min_item: int) -> set[int]:
    """The union of every subset of rows in which all users and items have enough rows."""
    core: set[int] = set()
    for size in range(1, len(rows) + 1):
        for subset in combinations(range(len(rows)), size):
            users = Counter(rows[i][0] for i in subset)
            items = Counter(rows[i][1] for i in subset)
            if min(users.values()) >= min_user and min(items.values()) >= min_item:
                core.update(subset)
    return core


@pytest.mark.parametrize("seed", range(30))
def test_k_core_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 11))
    rows = [(f"u{rng.integers(3)}", f"i{rng.integers(4)}") for _ in range(n)]
    min_user, min_item = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    frame = pl.DataFrame(
        {"user": [r[0] for r in rows], "item": [r[1] for r in rows]}
    ).with_row_index("row")
    kept = k_core(frame, min_user, min_item)
    assert set(kept["row"].to_list()) == brute_force_core(rows, min_user, min_item)


def test_k_core_needs_several_rounds_and_reports_what_it_removed():
    # dropping item z leaves user v with one interaction, which then removes item y as well
    rows = [("u", "x", 1), ("u", "y", 2), ("w", "x", 3), ("w", "y", 4), ("v", "z", 5)]
    rows += [("v", "y", 6), ("t", "x", 7), ("t", "y", 8)]
    corpus = build_corpus(frame_of(rows), min_user_interactions=2, min_item_interactions=2)
    assert raw_sequences(corpus) == {"u": ["x", "y"], "w": ["x", "y"], "t": ["x", "y"]}
    (step,) = corpus.filters
    assert (step.rows_removed, step.users_removed, step.items_removed) == (2, 1, 1)
    assert corpus.source_rows.tolist() == [0, 1, 2, 3, 6, 7]


def test_rating_threshold_counts_exactly_what_it_removed():
    rows = [("u", "a", 1), ("u", "b", 2), ("v", "b", 3), ("w", "c", 4)]
    corpus = build_corpus(frame_of(rows, ratings=[5.0, 2.0, 4.0, 1.0]), min_rating=4)
    assert raw_sequences(corpus) == {"u": ["a"], "v": ["b"]}
    (step,) = corpus.filters
    assert (step.name, step.rows_removed, step.users_removed, step.items_removed) == (
        "rating >= 4",
        2,
        1,
        1,
    )
    with pytest.raises(DataError, match="the data has no rating column"):
        build_corpus(frame_of(rows), min_rating=4)
    with pytest.raises(DataError, match="no interactions left after filtering: rating >= 9"):
        build_corpus(frame_of(rows, ratings=[1.0] * 4), min_rating=9)


def test_max_len_keeps_the_newest():
    rows = [("u", "a", 4), ("u", "b", 1), ("u", "c", 3), ("u", "d", 2), ("v", "a", 9)]
    corpus = build_corpus(frame_of(rows), max_len=2)
    assert raw_sequences(corpus) == {"u": ["c", "a"], "v": ["a"]}
    assert corpus.items.raw.tolist() == ["a", "c"]  # b and d are gone from the vocabulary
    (step,) = corpus.filters
    assert (step.rows_removed, step.users_removed, step.items_removed) == (2, 0, 2)


def test_filters_chain_and_each_reports_its_own_removal():
    rng = np.random.default_rng(7)
    n = 400
    frame = pl.DataFrame(
        {
            "user": rng.integers(0, 40, n).astype(str),
            "item": rng.integers(0, 60, n).astype(str),
            "timestamp": rng.integers(0, 50, n).astype(np.float64),
            "rating": rng.integers(1, 6, n).astype(np.float64),
        }
    )
    corpus = build_corpus(
        frame, min_rating=3, min_user_interactions=3, min_item_interactions=2, max_len=4
    )
    assert [s.name.split(" ")[0] for s in corpus.filters] == ["rating", "k-core", "keep"]
    assert sum(s.rows_removed for s in corpus.filters) == n - corpus.n_interactions
    assert sum(s.users_removed for s in corpus.filters) == 40 - corpus.n_users
    assert sum(s.items_removed for s in corpus.filters) == frame["item"].n_unique() - corpus.n_items
    assert corpus.sequences.lengths.max() == 4
    kept = frame[corpus.source_rows]
    assert (kept["rating"] >= 3).all()
    users = corpus.users.decode(corpus.sequences.row_ids())
    items = corpus.items.decode(corpus.sequences.items)
    assert kept["user"].to_list() == users.tolist() and kept["item"].to_list() == items.tolist()


def test_vocabulary_round_trip_and_unknown_id():
    vocab = Vocabulary(np.array(["x", "y", "z"]), offset=1)
    codes = vocab.encode(["z", "x", "z"])
    assert codes.tolist() == [3, 1, 3]
    assert vocab.decode(codes).tolist() == ["z", "x", "z"]
    with pytest.raises(KeyError, match=r"unknown item: 'w'"):
        vocab.encode(["x", "w"], what="item")
    corpus = build_corpus(frame_of([("7", "11", 1), ("8", "12", 2), ("7", "12", 3)]))
    assert corpus.items.encode(corpus.items.raw).tolist() == [1, 2]
    assert corpus.users.encode(["8"]).tolist() == [1]


def test_invalid_max_len_and_empty_frame():
    frame = frame_of([("u", "a", 1)])
    with pytest.raises(ValueError, match="max_len must be at least 1, got 0"):
        build_corpus(frame, max_len=0)
    with pytest.raises(ValueError, match="the interaction frame is empty"):
        build_corpus(frame.clear())


@pytest.mark.parametrize(("policy", "kept"), [("keep", 5), ("drop", 3)])
def test_exact_duplicates_are_counted_and_kept_or_dropped(policy, kept):
    # (u, a, 1) three times: two rows repeat an earlier one; (u, a, 2) is a repeat at another time
    rows = [("u", "a", 1), ("u", "a", 1), ("v", "b", 3), ("u", "a", 1), ("u", "a", 2)]
    corpus = build_corpus(frame_of(rows), duplicates=policy)
    assert corpus.duplicate_rows == 2
    assert corpus.n_interactions == kept
    assert corpus.rows_read - sum(s.rows_removed for s in corpus.filters) == kept
    report = corpus.load_report()
    assert report[0] == "read 5 interactions"
    done = {"keep": "kept", "drop": "dropped"}[policy]
    assert report[1] == f"exact duplicates (rows identical to an earlier row): 2, {done}"
    assert report[-1] == f"kept {kept} interactions (2 users, 2 items)"


def test_rows_differing_in_one_column_are_not_duplicates():
    frame = frame_of([("u", "a", 1), ("u", "a", 1)], ratings=[4.0, 5.0])
    assert build_corpus(frame, duplicates="error").duplicate_rows == 0


def test_duplicates_error_names_the_row_and_its_values():
    rows = [("u", "a", 1), ("v", "b", 2), ("v", "b", 2)]
    with pytest.raises(DataError, match=r"data row 3 \(user 'v', item 'b', timestamp 2.0\)"):
        build_corpus(frame_of(rows), duplicates="error")
