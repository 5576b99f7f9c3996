"""Property test: any file, however malformed, is read with every row accounted for, or refused.

Hypothesis writes random interaction files in every supported format (atomic ``.inter``, CSV, TSV,
Parquet, ``user item`` text), mixing ordinary values with the awkward ones real data holds: empty
and blank ids, control characters (NUL, tab, escape), quotes, commas, non-ASCII text, numbers
with spaces around them, ``nan``, ``inf``, overflowing exponents, words where numbers belong,
missing and surplus fields, blank lines, CRLF line ends, a byte-order mark, header lines where
none belong, and repeated rows. An independent oracle (plain Python, not the reader) says
whether each generated file is valid. Then:

- a valid file is read to exactly the rows and values written, and ``build_corpus`` accounts for
  every row (read - removed = kept, duplicates counted as the oracle counts them);
- an invalid file raises ``DataError``, and nothing else is ever raised.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqrec.data.corpus import build_corpus
from seqrec.data.errors import DataError
from seqrec.data.readers import HEADER_NAMES, read_interactions

SETTINGS = settings(
    max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
NUMBER = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# ---------------------------------------------------------------- the oracle


def id_ok(token: str) -> bool:
    return token.strip() != "" and not CONTROL.search(token)


def number(token: str) -> float | None:
    """The value a number field must be read as, or None when the field is not a finite number."""
    text = token.strip(" ")
    if not NUMBER.match(text):
        return None
    value = float(text)
    return value if abs(value) != float("inf") else None


def is_header(user: str, item: str, rest: list[tuple[str, str]]) -> bool:
    """The documented rule of ``read_user_item_text`` for a first line that is a header."""
    named = all(t.lower().split(":", 1)[0] in HEADER_NAMES for t in (user, item))
    ascii_int = re.compile(r"^[0-9]+$")
    numeric_rest = bool(rest) and all(ascii_int.match(u) and ascii_int.match(i) for u, i in rest)
    return named or (not (user.isdigit() or item.isdigit()) and numeric_rest)


@dataclass
class Expected:
    """What a valid file must read as (None: the file is invalid, a ``DataError`` is due)."""

    rows: list[tuple] | None  # (user, item, timestamp) per data row, in file order


def expect_timed(rows: list[list[str]], width: int) -> Expected:
    """Rows of (user, item, timestamp) tokens in a format with a header of ``width`` fields."""
    out = []
    for row in rows:
        if len(row) != width or not (id_ok(row[0]) and id_ok(row[1])):
            return Expected(None)
        stamp = number(row[2])
        if stamp is None:
            return Expected(None)
        out.append((row[0], row[1], stamp))
    return Expected(out or None)


def duplicates_of(rows: list[tuple]) -> int:
    seen: set[tuple] = set()
    count = 0
    for row in rows:
        count += row in seen
        seen.add(row)
    return count


# ---------------------------------------------------------------- strategies

NICE_IDS = st.sampled_from(["u1", "i7", "42", "7", "user", "Zoë", "用户", "a b", "x-1", "NA"])
ODD_IDS = st.sampled_from(
    ["", " ", "u\x00", "\x1b[0m", "i\x7f", "a\x85b", "\t", '"q"', "a,b", "a\nb", "\ufeffu"]
)
NICE_NUMBERS = st.one_of(
    st.integers(-(10**6), 10**9).map(str),
    st.floats(-1e9, 1e9, allow_nan=False).map(repr),
    st.sampled_from(["1e3", " 5 ", "+7", ".5", "00012"]),
)
ODD_NUMBERS = st.sampled_from(
    ["nan", "inf", "-inf", "NaN", "1e400", "", "abc", "1,5", "0x10", "1_0"]
)


@st.composite
def with_faults(draw, rows: list[list], faults: dict[str, st.SearchStrategy]) -> list[list]:
    """``rows`` with some earlier rows repeated, then 0-2 faults, each in one random row.

    ``faults`` maps a fault to a strategy for its new value: a column index -> a value for that
    field; "short" / "long" drop or add a field; "empty" empties every field.
    """
    rows = [list(r) for r in rows]
    if rows:
        rows += [list(r) for r in draw(st.lists(st.sampled_from(rows), max_size=3))]
    for _ in range(draw(st.integers(0, 2))):
        if not rows:
            break
        index = draw(st.integers(0, len(rows) - 1))
        fault = draw(st.sampled_from(sorted(faults, key=str)))
        row = list(rows[index])
        if fault == "short":
            row = row[:-1]
        elif fault == "long":
            row = [*row, draw(faults[fault])]
        elif fault == "empty":
            row = [""] * len(row)
        else:
            row[fault] = draw(faults[fault])
        rows[index] = row
    return rows


TEXT_FAULTS = {0: ODD_IDS, 1: ODD_IDS, 2: ODD_NUMBERS, "short": st.none(), "long": NICE_NUMBERS,
               "empty": st.none()}  # fmt: skip
rows_strategy = st.lists(st.tuples(NICE_IDS, NICE_IDS, NICE_NUMBERS).map(list), max_size=8).flatmap(
    lambda rows: with_faults(rows, TEXT_FAULTS)
)


LAYOUT = st.fixed_dictionaries(
    {"blank_lines": st.booleans(), "crlf": st.booleans(), "bom": st.booleans()}
)


def layout_lines(lines: list[str], layout: dict, draw_positions: list[int]) -> bytes:
    if layout["blank_lines"]:
        for position in draw_positions:
            lines.insert(min(position, len(lines)), "")
    newline = "\r\n" if layout["crlf"] else "\n"
    text = newline.join(lines) + newline
    return ("\ufeff" if layout["bom"] else "").encode() + text.encode("utf-8")


# ---------------------------------------------------------------- the checks


def check(path: Path, expected: Expected, policy: str = "keep") -> None:
    try:
        frame = read_interactions(path)
    except DataError:
        assert expected.rows is None, f"a valid file was refused: {path.read_bytes()!r}"
        return
    assert expected.rows is not None, f"an invalid file was read: {path.read_bytes()!r}"
    assert frame.height == len(expected.rows)
    assert frame.select("user", "item", "timestamp").rows() == expected.rows
    try:
        corpus = build_corpus(frame, duplicates=policy)
    except DataError:
        assert policy == "error" and duplicates_of(expected.rows) > 0
        return
    assert corpus.rows_read == frame.height
    assert corpus.duplicate_rows == duplicates_of(expected.rows)
    assert corpus.rows_read - sum(s.rows_removed for s in corpus.filters) == corpus.n_interactions


POLICIES = st.sampled_from(["keep", "drop", "error"])
POSITIONS = st.lists(st.integers(0, 12), max_size=3)


@SETTINGS
@given(rows_strategy, LAYOUT, POSITIONS, POLICIES)
def test_csv(rows, layout, positions, policy):
    def record(fields: list[str]) -> str:  # one CSV record, quoted as the csv module does
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(fields)
        return buffer.getvalue()

    lines = [record(["user_id", "item_id", "timestamp"])] + [record(r) for r in rows]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.csv"
        path.write_bytes(layout_lines(lines, layout, [p + 1 for p in positions]))
        check(path, expect_timed(rows, 3), policy)


def _plain_rows(rows: list[list[str]]) -> list[list[str]]:
    """Rows for formats without quoting: a separator inside a token is removed."""
    return [[t.replace("\t", "").replace("\n", "").replace("\r", "") for t in r] for r in rows]


@SETTINGS
@given(rows_strategy, LAYOUT, POSITIONS, POLICIES, st.booleans())
def test_tsv_and_atomic(rows, layout, positions, policy, atomic):
    rows = _plain_rows(rows)
    header = (
        "user_id:token\titem_id:token\ttimestamp:float" if atomic else "user_id\titem_id\ttimestamp"
    )
    lines = [header] + ["\t".join(r) for r in rows]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("x.inter" if atomic else "x.tsv")
        path.write_bytes(layout_lines(lines, layout, [p + 1 for p in positions]))
        check(path, expect_timed(rows, 3), policy)


SPACE = re.compile(r"\s")
TXT_IDS = NICE_IDS.filter(lambda t: not SPACE.search(t))
ODD_TXT_IDS = st.sampled_from(["u\x00", "\x1b[0m", "i\x7f", "user", "item", "user_id", "§"])
TXT_FAULTS = {0: ODD_TXT_IDS, 1: ODD_TXT_IDS}
txt_strategy = st.lists(st.tuples(TXT_IDS, TXT_IDS).map(list), max_size=8).flatmap(
    lambda rows: with_faults(rows, TXT_FAULTS)
)


def expect_txt(pairs: list[tuple[str, str]], header: list[str] | None) -> Expected:
    rows = ([tuple(header)] if header else []) + pairs
    if not rows or not all(id_ok(u) and id_ok(i) for u, i in rows):
        return Expected(None)
    if is_header(rows[0][0], rows[0][1], rows[1:]):
        return Expected(None)
    return Expected([(u, i, float(t)) for t, (u, i) in enumerate(rows)])


@SETTINGS
@given(
    txt_strategy,
    st.sampled_from([None, ["user", "item"], ["user_id", "item_id"], ["userId", "itemId"]]),
    st.sampled_from([" ", "\t", "  ", " \t "]),
    LAYOUT,
    POSITIONS,
    POLICIES,
)
def test_user_item_text(pairs, header, separator, layout, positions, policy):
    lines = ([separator.join(header)] if header else []) + [separator.join(p) for p in pairs]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.txt"
        path.write_bytes(layout_lines(lines, layout, positions))
        check(path, expect_txt(pairs, header), policy)


PARQUET_FAULTS = {0: ODD_IDS, 2: st.sampled_from([None, float("nan"), float("inf"), -1e400])}
parquet_strategy = st.lists(
    st.tuples(NICE_IDS, st.integers(0, 9), st.integers(-(2**40), 2**40)).map(list), max_size=8
).flatmap(lambda rows: with_faults(rows, PARQUET_FAULTS))


@SETTINGS
@given(parquet_strategy, st.booleans(), POLICIES)
def test_parquet(rows, stamps_as_float, policy):
    users = [r[0] for r in rows]
    items = [r[1] for r in rows]  # integer ids, read as their decimal text
    stamps = [None if r[2] is None else float(r[2]) if stamps_as_float else r[2] for r in rows]
    kind = pl.Float64 if stamps_as_float or any(isinstance(s, float) for s in stamps) else pl.Int64
    frame = pl.DataFrame(
        {"user_id": users, "item_id": items, "timestamp": stamps},
        schema={"user_id": pl.Utf8, "item_id": pl.Int64, "timestamp": kind},
    )
    valid = rows and all(
        id_ok(u) and s is not None and abs(float(s)) != float("inf") and s == s
        for u, s in zip(users, stamps, strict=True)
    )
    expected = Expected(
        [(u, str(i), float(s)) for u, i, s in zip(users, items, stamps, strict=True)]
        if valid
        else None
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.parquet"
        frame.write_parquet(path)
        check(path, expected, policy)


@pytest.mark.parametrize("content", [b"", b"PAR1", b"not parquet at all", b"PAR1\x00\x00PAR1"])
def test_a_file_named_parquet_that_is_not_parquet(tmp_path, content):
    path = tmp_path / "x.parquet"
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(str(path))):
        read_interactions(path)
