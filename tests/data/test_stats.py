import numpy as np
import polars as pl
import pytest

from seqrec.data.corpus import build_corpus
from seqrec.data.stats import corpus_stats, format_stats


def test_stats_of_a_small_corpus():
    frame = pl.DataFrame(
        {
            "user": ["u", "u", "u", "v", "w", "w"],
            "item": ["a", "b", "a", "c", "b", "c"],
            "timestamp": np.arange(6, dtype=np.float64),
        }
    )
    stats = corpus_stats(build_corpus(frame))
    assert stats == {
        "users": 3,
        "items": 3,
        "interactions": 6,
        "length_mean": 2.0,
        "length_median": 2.0,
        "length_min": 1,
        "length_max": 3,
        "density": pytest.approx(6 / 9),
    }
    table = format_stats(stats, title="small")
    assert table.splitlines()[0] == "small"
    assert table.splitlines()[1] == "users" + " " * 17 + "3"
    assert table.splitlines()[-1] == "density" + " " * 8 + "66.6667%"
    assert "length mean" + " " * 8 + "2.00" in table
