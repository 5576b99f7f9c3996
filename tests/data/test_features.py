from pathlib import Path

import numpy as np
import polars as pl
import pytest

from seqrec.data.corpus import Vocabulary, build_corpus
from seqrec.data.errors import DataError
from seqrec.data.features import build_feature_table, features_from_columns, read_feature_file
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


def test_rare_tokens_share_the_unknown_code_and_are_counted():
    items = Vocabulary(np.array(["a", "b", "c", "d"]), offset=1)
    frame = pl.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "genre": ["x", "x", "rare", None],
            "tags": [["t", "u"], ["t"], ["t", "once"], []],
        }
    )
    table = build_feature_table(frame, items, min_count=2)
    assert table.vocabularies["genre"].raw.tolist() == ["x"]
    unknown = table.unknown_code("genre")
    assert unknown == 2 and table.n_token_codes("genre") == 3
    assert table.arrays["genre"].tolist() == [0, 1, 1, unknown, 0]
    tags_unknown = table.unknown_code("tags")  # t is kept; u and once are rare
    assert table.arrays["tags"].tolist() == [[0, 0], [1, 2], [1, 0], [1, 2], [0, 0]]
    assert tags_unknown == 2
    assert table.unknown == {"genre": 1, "tags": 2}
    assert table.missing == {"genre": 1, "tags": 1}
    assert "genre: token (5,), 1 missing, 1 with unknown tokens" in table.describe()
    with pytest.raises(ValueError, match="min_count must be at least 1"):
        build_feature_table(frame, items, min_count=0)


def test_model_arrays_standardise_floats_over_the_corpus_and_flag_missing_values():
    items = Vocabulary(np.array(["a", "b", "c"]), offset=1)
    frame = pl.DataFrame({"id": ["a", "b", "c"], "price": [1.0, 3.0, None]})
    table = build_feature_table(frame, items)
    price = table.model_array("price")  # (n_codes, value + flag)
    assert price.dtype == np.float32 and price.shape == (4, 2)
    np.testing.assert_allclose(price[1:, 0], [-1.0, 1.0, 0.0])  # mean 2, std 1; missing -> mean
    assert price[1:, 1].tolist() == [0.0, 0.0, 1.0]
    vectors = pl.DataFrame({"id": ["a", "b"], "v": [[1.0, 10.0], [3.0, 30.0]]})
    v = build_feature_table(vectors, items).model_array("v")
    np.testing.assert_allclose(v[1:], [[-1, -1, 0], [1, 1, 0], [0, 0, 1]])  # per position
    assert table.model_array("price") is not table.arrays["price"]


def test_spec_gives_kinds_and_sizes():
    items = Vocabulary(np.array(["a", "b", "c"]), offset=1)
    spec = build_feature_table(small_frame(), items).spec()
    assert spec == (
        {"name": "genre", "kind": "token", "codes": 3, "width": 1},
        {"name": "tags", "kind": "token_seq", "codes": 5, "width": 3},
        {"name": "price", "kind": "float", "codes": 0, "width": 1},
        {"name": "emb", "kind": "float_seq", "codes": 0, "width": 2},
    )


def test_side_tables_in_csv_tsv_and_parquet(tmp_path):
    csv = tmp_path / "items.csv"
    csv.write_text('item_id,genre,tags,price\n1,x,"a|b",2.5\n2,y,,\n3,x,b,1\n')
    frame = read_feature_file(csv, "item_id", {"tags": "token_seq", "price": "float"}, "|")
    assert frame.columns == ["id", "genre", "tags", "price"]
    assert frame["tags"].to_list() == [["a", "b"], None, ["b"]]
    assert frame["price"].to_list() == [2.5, None, 1.0]
    tsv = tmp_path / "items.tsv"
    tsv.write_text("sku\tvector\n1\t0.5 1.5\n2\t2 3\n")
    frame = read_feature_file(tsv, "sku", {"vector": "float_seq"})
    assert frame["vector"].to_list() == [[0.5, 1.5], [2.0, 3.0]]
    parquet = tmp_path / "items.parquet"
    pl.DataFrame(
        {"item_id": [1, 2], "year": [1995, 1990], "tags": [["a"], ["b", "c"]]}
    ).write_parquet(parquet)
    frame = read_feature_file(parquet, "item_id", {"year": "token"})
    assert frame["id"].to_list() == ["1", "2"] and frame["year"].to_list() == ["1995", "1990"]
    items = Vocabulary(np.array(["1", "2"]), offset=1)
    assert build_feature_table(frame, items).kinds == {"year": "token", "tags": "token_seq"}


def test_bad_feature_files_name_the_file_and_the_place(tmp_path):
    csv = tmp_path / "items.csv"
    csv.write_text("item_id,price\n1,2.5\n2,cheap\n")
    with pytest.raises(DataError, match=r"items.csv: line 3: field 'price' has 'cheap', expected"):
        read_feature_file(csv, "item_id", {"price": "float"})
    vectors = tmp_path / "vectors.tsv"
    vectors.write_text("item_id\tv\n1\t1 2\n2\t3 x\n")
    with pytest.raises(DataError, match=r"vectors.tsv: line 3: field 'v' has \['3', 'x'\]"):
        read_feature_file(vectors, "item_id", {"v": "float_seq"})
    with pytest.raises(DataError, match=r"items.csv: header: no id column 'sku' \(columns"):
        read_feature_file(csv, "sku")
    with pytest.raises(DataError, match=r"no field 'size' to type \(fields: price\)"):
        read_feature_file(csv, "item_id", {"size": "float"})
    twice = tmp_path / "twice.csv"
    twice.write_text("item_id,price\n1,2\n1,3\n")
    with pytest.raises(DataError, match=r"twice.csv: line 3: id '1' appears more than once"):
        read_feature_file(twice, "item_id")
    other = tmp_path / "items.json"
    other.write_text("{}")
    with pytest.raises(DataError, match=r"unknown feature file type '\.json'"):
        read_feature_file(other, "item_id")
    with pytest.raises(FileNotFoundError, match="no such feature file"):
        read_feature_file(tmp_path / "none.csv", "item_id")


def test_features_from_interaction_columns_keep_the_first_value_and_say_when_they_vary():
    frame = pl.DataFrame(
        {"user": ["u", "u", "v"], "item": ["a", "b", "a"], "shop": ["s1", "s2", "s3"]}
    )
    features, notes = features_from_columns(frame, "item", ["shop"])
    assert features.to_dicts() == [{"id": "a", "shop": "s1"}, {"id": "b", "shop": "s2"}]
    assert notes == ("shop: 1 ids have more than one value; the first is kept",)
