"""The streaming corpus equals the eager one, is memory-mapped read-only, and is cached by key."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from seqrec.data.corpus import SequenceCorpus, build_corpus
from seqrec.data.errors import DataError
from seqrec.data.readers import read_interactions
from seqrec.data.streaming import Preprocessing, build_corpus_streaming
from seqrec.data.synth import SynthSpec, write_synthetic

ML100K = Path("/work/shared/data/ml-100k/ml-100k.inter")
PREPS = {
    "none": Preprocessing(),
    "k-core": Preprocessing(min_user_interactions=5, min_item_interactions=5),
    "all": Preprocessing(
        min_rating=2, min_user_interactions=4, min_item_interactions=8, max_len=9, duplicates="drop"
    ),
    "max_len": Preprocessing(max_len=3),
}


def assert_same_corpus(eager: SequenceCorpus, streamed: SequenceCorpus) -> None:
    for name in ("offsets", "items", "timestamps"):
        got, want = getattr(streamed.sequences, name), getattr(eager.sequences, name)
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    np.testing.assert_array_equal(streamed.source_rows, eager.source_rows)
    assert streamed.users.raw.tolist() == eager.users.raw.tolist()
    assert streamed.items.raw.tolist() == eager.items.raw.tolist()
    assert streamed.load_report() == eager.load_report()
    assert streamed.filters == eager.filters


@pytest.fixture(scope="module")
def shuffled(tmp_path_factory) -> Path:
    """Synthetic rows in random order, with repeated rows, ties in time and a rating column."""
    root = tmp_path_factory.mktemp("streaming")
    write_synthetic(SynthSpec(users=1_500, items=300, interactions_per_user=9, drift=0.6, seed=11),
                    root / "synth.parquet")  # fmt: skip
    frame = pl.read_parquet(root / "synth.parquet")
    frame = pl.concat([frame, frame.sample(200, seed=1)]).sample(fraction=1.0, shuffle=True, seed=2)
    rng = np.random.default_rng(3)
    frame = frame.with_columns(
        (pl.col("timestamp") // 7200).alias("timestamp"),  # many equal timestamps per user
        pl.Series("rating", rng.integers(1, 6, frame.height).astype(float)),
    )
    frame.write_parquet(root / "shuffled.parquet")
    return root / "shuffled.parquet"


@pytest.fixture(scope="module")
def ml100k_parquet(tmp_path_factory) -> Path:
    if not ML100K.is_file():
        pytest.skip("ml-100k is not in /work/shared/data")
    path = tmp_path_factory.mktemp("ml") / "ml-100k.parquet"
    frame = read_interactions(ML100K).rename({"user": "user_id", "item": "item_id"})
    frame.write_parquet(path)
    return path


@pytest.mark.parametrize("prep", PREPS.values(), ids=PREPS.keys())
@pytest.mark.parametrize("sort_rows", [50, 10**6], ids=["many-sort-ranges", "one"])
def test_equals_the_eager_corpus_on_synthetic_data(shuffled, tmp_path, prep, sort_rows):
    eager = build_corpus(read_interactions(shuffled), **vars(prep))
    assert eager.duplicate_rows > 0 and all(step.rows_removed > 0 for step in eager.filters)
    streamed = build_corpus_streaming(shuffled, tmp_path, prep=prep, sort_rows=sort_rows)
    assert_same_corpus(eager, streamed)


@pytest.mark.parametrize("prep", PREPS.values(), ids=PREPS.keys())
def test_equals_the_eager_corpus_on_ml100k(ml100k_parquet, tmp_path, prep):
    eager = build_corpus(read_interactions(ml100k_parquet), **vars(prep))
    streamed = build_corpus_streaming(ml100k_parquet, tmp_path, prep=prep, sort_rows=20_000)
    assert_same_corpus(eager, streamed)


def test_a_folder_of_parts_reads_as_their_concatenation(shuffled, tmp_path):
    frame = pl.read_parquet(shuffled)
    parts = tmp_path / "parts"
    parts.mkdir()
    for index, start in enumerate(range(0, frame.height, 4_000)):
        frame.slice(start, 4_000).write_parquet(parts / f"part-{index:05d}.parquet")
    prep = PREPS["all"]
    eager = build_corpus(read_interactions(shuffled), **vars(prep))
    assert_same_corpus(eager, build_corpus_streaming(parts, tmp_path / "cache", prep=prep))


def test_arrays_are_read_only_memory_maps_that_splits_and_windows_accept(shuffled, tmp_path):
    from seqrec.data.splits import leave_one_out
    from seqrec.training.data import training_windows

    corpus = build_corpus_streaming(shuffled, tmp_path)
    for array in (corpus.sequences.offsets, corpus.sequences.items, corpus.source_rows):
        assert isinstance(array, np.memmap) and not array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        corpus.sequences.items[0] = 1
    split = leave_one_out(corpus)
    windows, users = training_windows(split.train, seq_len=8)
    assert windows.shape[1] == 8 and len(users) == len(windows) > 0
    assert corpus.item_counts().sum() == corpus.n_interactions


def _entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if not p.name.startswith("."))


def test_the_cache_is_reused_and_rebuilt_when_the_file_or_a_filter_changes(shuffled, tmp_path):
    source = tmp_path / "data.parquet"
    source.write_bytes(shuffled.read_bytes())
    cache = tmp_path / "cache"
    first = build_corpus_streaming(source, cache)
    assert len(_entries(cache)) == 1
    items_file = Path(first.sequences.items.filename)
    built = items_file.stat().st_mtime_ns
    again = build_corpus_streaming(source, cache)
    assert Path(again.sequences.items.filename) == items_file
    assert items_file.stat().st_mtime_ns == built and len(_entries(cache)) == 1  # not rebuilt

    build_corpus_streaming(source, cache, prep=Preprocessing(min_user_interactions=5))
    assert len(_entries(cache)) == 2  # another filter: another entry
    frame = pl.read_parquet(source)
    frame.head(frame.height - 100).write_parquet(source)  # the file changes
    os.utime(source, ns=(1, 1))  # a different mtime even on a coarse clock
    changed = build_corpus_streaming(source, cache)
    assert len(_entries(cache)) == 3
    assert changed.rows_read == first.rows_read - 100
    assert_same_corpus(build_corpus(read_interactions(source)), changed)


def test_bad_values_and_duplicates_error_like_the_eager_path(tmp_path):
    path = tmp_path / "bad.parquet"
    pl.DataFrame(
        {
            "user_id": ["a", "b", "c"],
            "item_id": ["x", "y", "z"],
            "timestamp": [1.0, float("inf"), 2],
        }
    ).write_parquet(path)
    with pytest.raises(DataError, match=r"bad\.parquet: row 2: field 'timestamp'"):
        build_corpus_streaming(path, tmp_path / "cache")
    pl.DataFrame({"user_id": ["a", " "], "item_id": ["x", "y"]}).write_parquet(path)
    with pytest.raises(DataError, match=r"row 2: field 'user_id' is empty"):
        build_corpus_streaming(path, tmp_path / "cache")
    frame = pl.DataFrame({"user_id": ["a", "b", "a"], "item_id": ["x", "y", "x"],
                          "timestamp": [1.0, 2.0, 1.0]})  # fmt: skip
    frame.write_parquet(path)
    with pytest.raises(DataError) as eager:
        build_corpus(read_interactions(path), duplicates="error")
    with pytest.raises(DataError) as streamed:
        build_corpus_streaming(path, tmp_path / "cache", prep=Preprocessing(duplicates="error"))
    assert str(streamed.value) == str(eager.value)
    assert "data row 3" in str(streamed.value)
    assert not [p for p in (tmp_path / "cache").iterdir()]  # failed builds leave nothing
    pl.DataFrame(schema={"user_id": pl.Utf8, "item_id": pl.Utf8}).write_parquet(path)
    with pytest.raises(DataError, match="no data rows, expected at least one"):
        build_corpus_streaming(path, tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no \.parquet files in the folder"):
        build_corpus_streaming(tmp_path / "empty", tmp_path / "cache")


@pytest.mark.parametrize("time_column", ["datetime", "none"])
def test_datetimes_row_order_as_time_and_extra_columns_match_the_eager_path(tmp_path, time_column):
    rng = np.random.default_rng(0)
    n = 400
    data = {
        "user_id": [f"u{u}" for u in rng.integers(0, 30, n)],
        "item_id": rng.integers(0, 10, n),
        "session": rng.integers(0, 2, n),  # an extra column: part of "identical in every column"
    }
    if time_column == "datetime":
        seconds = rng.integers(0, 5, n) * 1_000_000  # microseconds, many ties and repeats
        data["timestamp"] = pl.Series(seconds).cast(pl.Datetime("us"))
    path = tmp_path / "typed.parquet"
    frame = pl.DataFrame(data)
    pl.concat([frame, frame.head(20)]).write_parquet(path)
    prep = Preprocessing(min_user_interactions=3, min_item_interactions=3, duplicates="drop")
    eager = build_corpus(read_interactions(path), **vars(prep))
    # without a time column the row order is the time: a repeated row is a repeat, not a duplicate
    assert eager.duplicate_rows >= 20 if time_column == "datetime" else eager.duplicate_rows == 0
    assert_same_corpus(eager, build_corpus_streaming(path, tmp_path / "cache", prep=prep))


def test_a_column_mapping_is_applied_and_is_part_of_the_cache_key(shuffled, tmp_path):
    path = tmp_path / "renamed.parquet"
    names = {"user_id": "uid", "item_id": "iid", "timestamp": "ts", "rating": "stars"}
    pl.read_parquet(shuffled).rename(names).write_parquet(path)
    columns = {"user": "uid", "item": "iid", "timestamp": "ts", "rating": "stars"}
    prep = Preprocessing(min_rating=3)
    eager = build_corpus(read_interactions(path, columns=columns), **vars(prep))
    assert_same_corpus(eager, build_corpus_streaming(path, tmp_path / "c", columns, prep))
    by_time = build_corpus_streaming(path, tmp_path / "c", {"user": "uid", "item": "iid"})
    assert len(_entries(tmp_path / "c")) == 2
    assert by_time.sequences.timestamps.max() == by_time.rows_read - 1  # no time column: row order
    with pytest.raises(DataError, match=r"no column 'nope' for user"):
        build_corpus_streaming(path, tmp_path / "c", {"user": "nope"})
