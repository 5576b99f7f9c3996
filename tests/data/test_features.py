from pathlib import Path

import numpy as np
import polars as pl
import pytest

from seqrec.data.corpus import Vocabulary, build_corpus
from seqrec.data.features import build_feature_table
from seqrec.data.readers import read_atomic_features, read_interactions

SHARED = Path("/work/shared/data/ml-100k")


def small_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": ["b", "a", "z"],
            "genre": ["x", None, "y"],
            "tags": [["t1", "t2", "t3"], [], ["t9"]],
            "price": [2.5, None, 1.0],
            "emb": [[0.5], [1.0, 2.0], None],
        }
    )


def test_arrays_are_indexed_by_item_code():
    items = Vocabulary(np.array(["a", "b", "c"]), offset=1)  # codes a=1, b=2, c=3
    table = build_feature_table(small_frame(), items)
    assert table.kinds == {
        "genre": "token",
        "tags": "token_seq",
        "price": "float",
        "emb": "float_seq",
    }
    assert table.n_codes == 4
    assert table.arrays["genre"].tolist() == [0, 0, 1, 0]  # only b has a genre: x -> 1
    assert table.vocabularies["genre"].raw.tolist() == ["x"]  # y belongs to an unknown id
    assert table.arrays["tags"].tolist() == [[0, 0, 0], [0, 0, 0], [1, 2, 3], [0, 0, 0]]
    assert table.vocabularies["tags"].decode(np.array([1, 3])).tolist() == ["t1", "t3"]
    np.testing.assert_array_equal(table.arrays["price"], [np.nan, np.nan, 2.5, np.nan])
    np.testing.assert_array_equal(
        table.arrays["emb"], [[np.nan, np.nan], [1.0, 2.0], [0.5, np.nan], [np.nan, np.nan]]
    )
    assert table.unknown_ids == ("z",)
    assert table.ids_without_features == ("c",)
    assert "1 ids in the features are not in the corpus (e.g. z)" in table.describe()
    assert "1 corpus ids have no features (e.g. c)" in table.describe()


def test_user_codes_start_at_zero_and_max_tokens_truncates():
    users = Vocabulary(np.array(["b", "a"]))  # codes b=0, a=1
    table = build_feature_table(small_frame().select("id", "tags"), users, max_tokens=2)
    assert table.arrays["tags"].tolist() == [[1, 2], [0, 0]]
    assert table.unknown_ids == ("z",) and table.ids_without_features == ()


def test_bad_frames():
    items = Vocabulary(np.array(["a"]), offset=1)
    with pytest.raises(ValueError, match=r"id 'a' has more than one feature row"):
        build_feature_table(pl.DataFrame({"id": ["a", "a"], "f": ["x", "y"]}), items)
    with pytest.raises(ValueError, match=r"feature 'flag' has type Boolean"):
        build_feature_table(pl.DataFrame({"id": ["a"], "flag": [True]}), items)
    with pytest.raises(ValueError, match=r"needs an 'id' column"):
        build_feature_table(pl.DataFrame({"item_id": ["a"]}), items)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared ml-100k not present")
def test_ml100k_genres_align_with_the_corpus():
    corpus = build_corpus(read_interactions(SHARED / "ml-100k.inter"))
    features = read_atomic_features(SHARED / "ml-100k.item", "item_id")
    table = build_feature_table(features, corpus.items)
    genres = table.arrays["class"]  # (1683, max genres per movie)
    assert genres.shape == (1683, 6)
    assert len(table.vocabularies["class"]) == 19
    assert (genres[0] == 0).all() and (genres[1:, 0] > 0).all()
    code = int(corpus.items.encode(["1"])[0])  # Toy Story
    names = table.vocabularies["class"].decode(genres[code][genres[code] > 0]).tolist()
    assert names == ["Animation", "Children's", "Comedy"]
    assert table.unknown_ids == () and table.ids_without_features == ()
