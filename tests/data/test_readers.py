from pathlib import Path

import polars as pl
import pytest

from seqrec.data.errors import DataError
from seqrec.data.readers import (
    read_atomic_features,
    read_atomic_header,
    read_atomic_interactions,
    read_interactions,
)

SHARED = Path("/work/shared/data")
INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- atomic files


def test_atomic_interactions_canonical_columns(tmp_path):
    path = write(tmp_path, "x.inter", INTER_HEADER + "u1\ti1\t4\t100\nu2\ti9\t2.5\t99\n")
    frame = read_atomic_interactions(path)
    assert frame.columns == ["user", "item", "timestamp", "rating"]
    assert frame.schema["user"] == pl.Utf8 and frame.schema["timestamp"] == pl.Float64
    assert frame.rows() == [("u1", "i1", 100.0, 4.0), ("u2", "i9", 99.0, 2.5)]


def test_atomic_interactions_custom_fields_keep_extra_columns(tmp_path):
    header = "sess:token\tprod:token\tt:float\tlabel:float\ttags:token_seq\n"
    path = write(tmp_path, "x.inter", header + "a\tb\t5\t1\tx y\n")
    frame = read_interactions(path, columns={"user": "sess", "item": "prod", "timestamp": "t"})
    assert frame.columns == ["user", "item", "timestamp", "label", "tags"]
    assert frame.row(0) == ("a", "b", 5.0, 1.0, ["x", "y"])


def test_atomic_without_time_uses_row_order(tmp_path):
    path = write(tmp_path, "x.inter", "user_id:token\titem_id:token\nu\ta\nu\tb\nv\ta\n")
    frame = read_atomic_interactions(path)
    assert frame["timestamp"].to_list() == [0.0, 1.0, 2.0]
    assert "rating" not in frame.columns


def test_atomic_features_types(tmp_path):
    header = "item_id:token\ttitle:token_seq\tyear:token\tprice:float\temb:float_seq\n"
    body = '1\tA "quoted" title\t1995\t9.5\t0.5 1\n2\tSolo\t\t\t\n'
    frame = read_atomic_features(write(tmp_path, "x.item", header + body), "item_id")
    assert frame.schema == pl.Schema(
        {
            "id": pl.Utf8,
            "title": pl.List(pl.Utf8),
            "year": pl.Utf8,
            "price": pl.Float64,
            "emb": pl.List(pl.Float64),
        }
    )
    assert frame.row(0) == ("1", ["A", '"quoted"', "title"], "1995", 9.5, [0.5, 1.0])
    assert frame.row(1) == ("2", ["Solo"], None, None, None)


def test_atomic_blank_lines_are_skipped_and_lines_still_counted(tmp_path):
    path = write(tmp_path, "x.inter", INTER_HEADER + "u\ta\t1\t1\n\nu\tb\t1\tlate\n\n")
    with pytest.raises(DataError, match=r"x\.inter: line 4: field 'timestamp' is 'late'"):
        read_atomic_interactions(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("u\ta\t1\t1\nu\tb\t1\n", r"line 3: 3 fields, expected 4"),
        ("u\ta\t1\t1\nu\tb\t1\t2\t3\n", r"line 3: 5 fields, expected 4"),
        ("u\ta\t1\t1\n\tb\t1\t2\n", r"line 3: empty field 'user_id'"),
        ("u\ta\tgood\t1\n", r"line 2: field 'rating' is 'good', expected a finite number"),
        ("", r"no data rows"),
    ],
)
def test_atomic_bad_rows_name_the_line(tmp_path, body, message):
    path = write(tmp_path, "bad.inter", INTER_HEADER + body)
    with pytest.raises(DataError, match=message) as error:
        read_atomic_interactions(path)
    assert str(path) in str(error.value)


def test_atomic_first_row_short_names_the_line(tmp_path):
    path = write(tmp_path, "bad.inter", INTER_HEADER + "u\ta\n")
    with pytest.raises(DataError, match=r"line 2: 2 fields, expected 4"):
        read_atomic_interactions(path)


def test_atomic_header_errors(tmp_path):
    with pytest.raises(DataError, match=r"line 1: header field 'rating:int'"):
        read_atomic_header(write(tmp_path, "a.inter", "user_id:token\trating:int\n"))
    with pytest.raises(DataError, match=r"line 1: empty header"):
        read_atomic_header(write(tmp_path, "b.inter", ""))
    path = write(tmp_path, "c.inter", "uid:token\titem_id:token\nu\ta\n")
    with pytest.raises(DataError, match=r"line 1: no field 'user_id' in the header \(uid, item_id"):
        read_atomic_interactions(path)


def test_atomic_features_duplicate_id(tmp_path):
    path = write(tmp_path, "x.user", "user_id:token\tage:token\n1\t20\n2\t30\n1\t40\n")
    with pytest.raises(DataError, match=r"line 2: id '1' appears more than once"):
        read_atomic_features(path, "user_id")


def test_float_seq_bad_token_names_the_line(tmp_path):
    path = write(tmp_path, "x.item", "item_id:token\temb:float_seq\n1\t1 2\n2\t3 x\n")
    with pytest.raises(DataError, match=r"line 3: field 'emb' is 'x'"):
        read_atomic_features(path, "item_id")


def test_non_utf8_names_the_line(tmp_path):
    path = tmp_path / "x.inter"
    path.write_bytes(INTER_HEADER.encode() + b"u\ta\t1\t1\nu\t\xff\xfe\t1\t1\n")
    with pytest.raises(DataError, match=r"x\.inter: line 3: not UTF-8 text"):
        read_atomic_interactions(path)


# ---------------------------------------------------------------- csv / tsv / parquet


def test_csv_with_mapping_and_quotes(tmp_path):
    text = 'uid,iid,when,stars,note\n7,"a,b",10,5,x\n8,c,20,4,\n'
    frame = read_interactions(
        write(tmp_path, "x.csv", text),
        columns={"user": "uid", "item": "iid", "timestamp": "when", "rating": "stars"},
    )
    assert frame.columns == ["user", "item", "timestamp", "rating", "note"]
    assert frame.rows() == [("7", "a,b", 10.0, 5.0, "x"), ("8", "c", 20.0, 4.0, None)]


def test_csv_defaults_and_row_order_time(tmp_path):
    frame = read_interactions(write(tmp_path, "x.csv", "user_id,item_id\nu,a\nu,b\n"))
    assert frame.rows() == [("u", "a", 0.0), ("u", "b", 1.0)]


def test_csv_missing_named_column(tmp_path):
    path = write(tmp_path, "x.csv", "user_id,item_id\nu,a\n")
    with pytest.raises(DataError, match=r"header: no column 'ts' for timestamp"):
        read_interactions(path, columns={"timestamp": "ts"})
    with pytest.raises(DataError, match=r"no column 'item_id' for item"):
        read_interactions(write(tmp_path, "y.csv", "user_id,product\nu,a\n"))


def test_tsv_bad_timestamp_and_ragged_row(tmp_path):
    path = write(tmp_path, "x.tsv", "user_id\titem_id\ttimestamp\nu\ta\t1\nu\tb\t2021-01-01\n")
    with pytest.raises(DataError, match=r"line 3: field 'timestamp' is '2021-01-01'"):
        read_interactions(path)
    path = write(tmp_path, "y.tsv", "user_id\titem_id\nu\ta\nu\tb\tc\n")
    with pytest.raises(DataError, match=r"line 3: 3 fields, expected 2"):
        read_interactions(path)


def test_parquet_int_ids_and_datetimes(tmp_path):
    path = tmp_path / "x.parquet"
    pl.DataFrame(
        {
            "user_id": [1, 2],
            "item_id": [10, 20],
            "timestamp": pl.Series(["1970-01-01 00:00:10", "1970-01-02"]).str.to_datetime(),
        }
    ).write_parquet(path)
    frame = read_interactions(path)
    assert frame.rows() == [("1", "10", 10.0), ("2", "20", 86400.0)]


def test_parquet_null_user_names_the_row(tmp_path):
    path = tmp_path / "x.parquet"
    pl.DataFrame({"user_id": ["a", None], "item_id": ["x", "y"]}).write_parquet(path)
    with pytest.raises(DataError, match=r"row 2: empty field 'user_id'"):
        read_interactions(path)


# ---------------------------------------------------------------- user item text


def test_user_item_text_time_is_line_order(tmp_path):
    frame = read_interactions(write(tmp_path, "x.txt", "1 5\n1 3\n2 5\n"))
    assert frame.rows() == [("1", "5", 0.0), ("1", "3", 1.0), ("2", "5", 2.0)]


def test_user_item_text_any_whitespace_and_blank_lines(tmp_path):
    frame = read_interactions(write(tmp_path, "x.txt", "1\t5\n\n  1   3 \n"))
    assert frame.rows() == [("1", "5", 0.0), ("1", "3", 1.0)]


def test_user_item_text_bad_line(tmp_path):
    path = write(tmp_path, "x.txt", "1 5\n1 3\n2 5 7\n")
    with pytest.raises(DataError, match=r"x\.txt: line 3: '2 5 7': expected 'user item'"):
        read_interactions(path)
    with pytest.raises(DataError, match=r"no data rows"):
        read_interactions(write(tmp_path, "e.txt", "\n"))


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"cannot tell the format from '.json'"):
        read_interactions(write(tmp_path, "x.json", "{}"))
    with pytest.raises(DataError, match="no such file"):
        read_interactions(tmp_path / "absent.csv")
    frame = read_interactions(write(tmp_path, "x.dat", "1 2\n"), fmt="txt")
    assert frame.rows() == [("1", "2", 0.0)]


# ---------------------------------------------------------------- the real files


@pytest.mark.skipif(not (SHARED / "ml-100k").is_dir(), reason="shared ml-100k not present")
def test_ml100k_real_files():
    inter = read_interactions(SHARED / "ml-100k" / "ml-100k.inter")
    assert inter.shape == (100_000, 4)
    assert inter["user"].n_unique() == 943 and inter["item"].n_unique() == 1682
    items = read_atomic_features(SHARED / "ml-100k" / "ml-100k.item", "item_id")
    assert items.height == 1682
    assert items.filter(pl.col("id") == "543")["movie_title"].item().to_list() == [
        "Misérables,",
        "Les",
    ]
    users = read_atomic_features(SHARED / "ml-100k" / "ml-100k.user", "user_id")
    assert users.height == 943 and users.columns[0] == "id"


@pytest.mark.skipif(not (SHARED / "beauty").is_dir(), reason="shared beauty not present")
def test_beauty_real_file():
    frame = read_interactions(SHARED / "beauty" / "beauty.txt")
    assert frame.height == 353_962
    assert frame["user"].n_unique() == 40_226 and frame["item"].n_unique() == 54_542
    assert frame["timestamp"][-1] == 353_961.0


def test_user_item_text_non_utf8_line(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"1 2\n1\t3\n2 \xff\n")
    with pytest.raises(DataError, match=r"x\.txt: line 3: not UTF-8 text"):
        read_interactions(path)


def test_empty_files(tmp_path):
    with pytest.raises(DataError, match=r"x\.csv: the file is empty"):
        read_interactions(write(tmp_path, "x.csv", ""))
    with pytest.raises(DataError, match=r"y\.csv: no data rows, expected at least one"):
        read_interactions(write(tmp_path, "y.csv", "user_id,item_id\n"))
    path = tmp_path / "z.parquet"
    pl.DataFrame(
        {"user_id": [], "item_id": []}, schema={"user_id": pl.Utf8, "item_id": pl.Utf8}
    ).write_parquet(path)
    with pytest.raises(DataError, match=r"z\.parquet: no data rows"):
        read_interactions(path)


def test_mapping_onto_an_existing_canonical_name_is_an_error(tmp_path):
    path = write(tmp_path, "x.csv", "user,user_id,item_id\na,b,c\n")
    with pytest.raises(DataError, match=r"header: column 'user' exists and would be replaced"):
        read_interactions(path)


# ---------------------------------------------------------------- what is data and what is not


@pytest.mark.parametrize(
    "first", ["user item", "user_id item_id", "userId itemId", "USER_ID:token ITEM_ID:token"]
)
def test_user_item_text_header_names_line_one(tmp_path, first):
    path = write(tmp_path, "x.txt", f"{first}\n1 5\n2 6\n")
    with pytest.raises(DataError, match=rf"x\.txt: line 1: '{first}' looks like a header"):
        read_interactions(path)


def test_user_item_text_first_line_of_words_above_numbers_is_a_header(tmp_path):
    with pytest.raises(DataError, match=r"line 2: 'customer product' looks like a header"):
        read_interactions(write(tmp_path, "x.txt", "\ncustomer product\n1 5\n2 6\n"))
    frame = read_interactions(write(tmp_path, "y.txt", "alice film\nbob book\n"))  # all words
    assert frame["user"].to_list() == ["alice", "bob"]
    frame = read_interactions(write(tmp_path, "z.txt", "7 apple\n1 5\n"))  # one number
    assert frame.height == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user_id,item_id,timestamp\nu,a,1\n,,\n", r"line 3: empty field 'user_id'"),
        ("user_id,item_id,timestamp\nu,a,1e400\n", r"line 2: field 'timestamp' is '1e400'"),
        ("user_id,item_id,timestamp\nu,a,-inf\n", r"line 2: field 'timestamp' is '-inf'"),
        ('user_id,item_id,timestamp\nu,"a\tb",1\n', r"line 2: field 'item_id' 'a\\tb' holds a"),
        ('user_id,item_id,timestamp\n" ",a,1\n', r"line 2: field 'user_id' ' ' is empty"),
        (
            'user_id,item_id,timestamp,note\nu,a,1,"two\nlines"\nu,b,late,x\n',
            r"line 4: field 'timestamp' is 'late'",
        ),
    ],
)
def test_csv_values_that_are_not_data(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_interactions(write(tmp_path, "x.csv", text))


def test_nan_rating_in_parquet_names_the_row(tmp_path):
    path = tmp_path / "x.parquet"
    pl.DataFrame(
        {"user_id": ["a", "b"], "item_id": ["x", "y"], "rating": [4.0, float("nan")]}
    ).write_parquet(path)
    with pytest.raises(DataError, match=r"row 2: field 'rating' is nan, expected a finite number"):
        read_interactions(path)


def test_layout_details_that_are_fine(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xef\xbb\xbfuser_id,item_id,timestamp\r\nu,a, 5 \r\n\r\nu,b,6\r\n")
    assert read_interactions(path).rows() == [("u", "a", 5.0), ("u", "b", 6.0)]
    path = tmp_path / "x.txt"
    path.write_bytes(b"\xef\xbb\xbf1 5\r\n1 6\r\n")
    assert read_interactions(path).rows() == [("1", "5", 0.0), ("1", "6", 1.0)]
    path = tmp_path / "x.inter"
    path.write_bytes(b"\xef\xbb\xbfuser_id:token\titem_id:token\r\nu\ta\r\n")
    assert read_interactions(path).rows() == [("u", "a", 0.0)]


def test_float_and_boolean_ids_are_refused(tmp_path):
    path = tmp_path / "x.parquet"
    pl.DataFrame({"user_id": [1.0, 2.0], "item_id": [1, 2]}).write_parquet(path)
    with pytest.raises(DataError, match=r"field 'user_id' has type Float64, expected ids"):
        read_interactions(path)
