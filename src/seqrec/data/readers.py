"""Readers from files into the canonical interaction frame.

The canonical frame has ``user`` and ``item`` (Utf8 raw ids), ``timestamp`` (Float64), and when
the source has them ``rating`` and ``label`` (Float64); any other column of the source is kept
after those. A source without time gets the row order within the file (0, 1, 2, ...) as time.

Supported sources: RecBole atomic files (``.inter``, and ``.item`` / ``.user`` features through
``read_atomic_features``), CSV / TSV / Parquet with a column mapping, and the whitespace-separated
``user item`` text of the paper repositories. Bad input raises ``DataError`` naming the file, the
line (1-based) or field, and what was expected; no row is ever dropped silently (blank lines carry
no data and are skipped), so the frame has one row per data line (per record in Parquet).

What is an error rather than data: a missing, empty or unreadable file; a file that is not of
its format; a row with too few or too many fields; an empty user or item id, or one holding a
control character (U+0000-U+001F, U+007F-U+009F, e.g. a NUL byte or a tab); an empty timestamp
or rating, or one that is not a finite number (``nan``, ``inf`` and overflowing values are errors,
spaces around a number are not); and in the headerless ``user item`` text, a first line that is a
header (see ``read_user_item_text``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from pathlib import Path

import polars as pl

from seqrec.data.errors import DataError, first_line
from seqrec.errors import ArgumentError

ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")
FORMATS = {".inter": "atomic", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".txt": "txt"}
CANONICAL = ("user", "item", "timestamp", "rating", "label")
_NUMERIC = ("timestamp", "rating", "label")
_REQUIRED = ("user", "item", "timestamp")
_DEFAULT_COLUMNS = {"user": "user_id", "item": "item_id", "timestamp": "timestamp"}
_CONTROL = r"[\x00-\x1f\x7f-\x9f]"  # C0 and C1 control characters, NUL and tab included
# first lines of a ``user item`` text that are headers (compared lower-cased, ":type" removed)
HEADER_NAMES = frozenset(
    {"user", "item", "user_id", "item_id", "userid", "itemid", "uid", "iid", "users", "items",
     "session", "session_id", "sessionid", "product", "product_id", "productid"}
)  # fmt: skip


# ---------------------------------------------------------------- delimited text, all as Utf8


def _scan_rows(
    path: Path, delimiter: str, n_fields: int | None, quoted: bool, first: int
) -> tuple[list[bool], list[int]]:
    """Second pass with Python's csv module: raise on the first row with a wrong field count.

    Returns, for every row from line ``first`` on (blank lines included, as the fast reader
    gives them), whether it is a blank line and the line it starts on. A blank line is an empty
    line; a line of empty fields (``,,``) is a row, and its empty fields are errors later.
    """
    quoting = csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE
    reader = csv.reader(_decoded_lines(path), delimiter=delimiter, quoting=quoting)
    blank, starts, start = [], [], 1
    for row in reader:
        line, start = start, reader.line_num + 1
        if line < first:
            continue
        if n_fields is None:  # the header of a CSV/TSV sets the width
            n_fields = len(row) or None
            continue
        if row and len(row) != n_fields:
            problem = f"{len(row)} fields, expected {n_fields}: {row!r}"
            raise DataError.at(path, line, problem)
        blank.append(not row)
        starts.append(line)
    return blank, starts


def _decoded_lines(path: Path) -> Iterator[str]:
    """Lines decoded one by one, so a byte that is not UTF-8 is reported on its own line."""
    with _opened(path) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                # utf-8-sig on the first line: a byte-order mark is not part of the first field
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise DataError.at(path, number, f"not UTF-8 text ({error.reason})") from error


def _opened(path: Path):
    """``path`` opened for reading; a file that cannot be read is a ``DataError`` naming it."""
    try:
        return path.open("rb")
    except OSError as error:
        raise DataError.at(path, None, f"cannot be read: {error.strerror}") from error


def _check_header(path: Path, separator: str, quoted: bool) -> None:
    """A header must name each column once (the fast reader would rename a repeated name)."""
    quoting = csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE
    header = next(csv.reader(_decoded_lines(path), delimiter=separator, quoting=quoting), [])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError.at(path, 1, f"column '{repeated[0]}' appears more than once in the header")


def _read_delimited(
    path: Path, *, separator: str, names: list[str] | None, skip: int, quoted: bool = False
) -> pl.DataFrame:
    """Every column as Utf8 plus ``_line`` (the 1-based line of each row).

    ``names`` None means the first line is a header. Fields missing from a row or surplus fields
    raise ``DataError`` with the line; empty fields are null.
    """
    if path.stat().st_size == 0:
        raise DataError.at(path, None, "the file is empty")
    options = {"quote_char": '"' if quoted else None, "separator": separator}
    first = skip + (1 if names is None else 0) + 1  # line of the first data row
    if names is None:
        _check_header(path, separator, quoted)
    try:
        if names is None:
            frame = pl.read_csv(path, has_header=True, infer_schema=False, **options)
        else:
            schema = dict.fromkeys(names, pl.Utf8)
            frame = pl.read_csv(
                path, has_header=False, skip_rows=skip, schema=schema,
                missing_columns="insert", **options,
            )  # fmt: skip
    except pl.exceptions.PolarsError as error:
        if names is None:  # the header sets the width
            _scan_rows(path, separator, None, quoted, 1)
        else:
            _scan_rows(path, separator, len(names), quoted, first)
        problem = f"cannot be read as delimited text: {first_line(error)}"
        raise DataError.at(path, None, problem) from error
    frame = frame.with_row_index("_line", offset=first)
    columns = [c for c in frame.columns if c != "_line"]
    nulls = pl.any_horizontal(pl.col(columns).is_null().any())
    spans = pl.any_horizontal(pl.col(columns).str.contains("[\r\n]").any())  # quoted newlines
    if frame.select(nulls | spans if quoted else nulls).item():
        # nulls come from blank lines, short rows or empty fields: only short rows are errors,
        # and blank lines are skipped; a quoted newline shifts the lines of the rows after it
        blank, starts = _scan_rows(path, separator, len(columns), quoted, first)
        if len(blank) != frame.height:
            problem = f"{frame.height:,} rows read but {len(blank):,} found line by line (quotes?)"
            raise DataError.at(path, None, f"cannot be read as delimited text: {problem}")
        frame = frame.with_columns(pl.Series("_line", starts)).filter(~pl.Series(blank))
    if frame.height == 0:
        raise DataError.at(path, None, "no data rows, expected at least one")
    return frame


# ---------------------------------------------------------------- typing and validation


def _place(frame: pl.DataFrame, index: int) -> int | str:
    """Where row ``index`` is in the file: its line for text, ``row N`` for Parquet."""
    if "_line" in frame.columns:
        return int(frame["_line"][index])
    return f"row {index + 1}"


def _require_values(frame: pl.DataFrame, path: Path, columns: Mapping[str, str]) -> None:
    for name, source in columns.items():
        missing = frame[name].is_null()
        if missing.any():
            row = int(missing.arg_true()[0])
            problem = f"empty field '{source}', expected a value"
            raise DataError.at(path, _place(frame, row), problem)


def _to_float(frame: pl.DataFrame, name: str, path: Path, source: str) -> pl.Series:
    """Column ``name`` as Float64; a value that is not a finite number is an error naming its line.

    Datetimes and dates become epoch seconds; spaces around a number in text are ignored.
    """
    column = frame[name]
    if isinstance(column.dtype, pl.Datetime) or column.dtype == pl.Date:
        return column.dt.epoch("us").cast(pl.Float64) / 1e6
    if column.dtype == pl.Utf8:
        column = column.str.strip_chars(" ")
    try:
        values = column.cast(pl.Float64, strict=False)
    except pl.exceptions.PolarsError as error:
        problem = f"field '{source}' has type {column.dtype}, expected numbers or datetimes"
        raise DataError.at(path, None, problem) from error
    bad = (values.is_null() & column.is_not_null()) | ~values.is_finite().fill_null(True)
    if bad.any():
        row = int(bad.arg_true()[0])
        shown = frame[name][row]
        raise DataError.at(
            path, _place(frame, row), f"field '{source}' is {shown!r}, expected a finite number"
        )
    return values


def _to_ids(frame: pl.DataFrame, name: str, path: Path, source: str) -> pl.Series:
    """Column ``name`` as Utf8 ids; an empty id or one with a control character names its row.

    Integers and text are ids; floats and booleans are not (``2.0`` would not match ``2``).
    """
    dtype = frame[name].dtype
    if dtype.is_float() or dtype == pl.Boolean:
        problem = f"field '{source}' has type {dtype}, expected ids (text or integers)"
        raise DataError.at(path, None, problem)
    try:
        ids = frame[name].cast(pl.Utf8)
    except pl.exceptions.PolarsError as error:
        problem = f"field '{source}' has type {frame[name].dtype}, expected ids (text or integers)"
        raise DataError.at(path, None, problem) from error
    for bad, problem in (
        (ids.str.strip_chars() == "", "is empty, expected an id"),
        (ids.str.contains(_CONTROL), "holds a control character, expected an id"),
    ):
        if bad.any():
            row = int(bad.arg_true()[0])
            raise DataError.at(path, _place(frame, row), f"field '{source}' {ids[row]!r} {problem}")
    return ids


def _canonical(frame: pl.DataFrame, path: Path, sources: Mapping[str, str]) -> pl.DataFrame:
    """Rename ``sources`` (canonical -> source name), check and type, order the columns.

    Without a timestamp column, the row order within the file is the time.
    """
    clash = [c for c, s in sources.items() if s != c and c in frame.columns]
    if clash:
        raise DataError.at(
            path,
            "header",
            f"column '{clash[0]}' exists and would be replaced by '{sources[clash[0]]}'",
        )
    frame = frame.rename({s: c for c, s in sources.items() if s != c})
    _require_values(frame, path, {c: s for c, s in sources.items() if c in CANONICAL})
    typed = [_to_ids(frame, c, path, sources[c]).alias(c) for c in ("user", "item")]
    typed += [_to_float(frame, c, path, s).alias(c) for c, s in sources.items() if c in _NUMERIC]
    frame = frame.with_columns(typed)
    if "timestamp" not in frame.columns:
        order = pl.int_range(pl.len(), dtype=pl.Int64).cast(pl.Float64)
        frame = frame.with_columns(order.alias("timestamp"))
    first = [c for c in CANONICAL if c in frame.columns]
    rest = [c for c in frame.columns if c not in CANONICAL and c != "_line"]
    return frame.select(first + rest)


def column_mapping(
    columns: Mapping[str, str] | None, available: list[str], path: Path
) -> dict[str, str]:
    """Canonical name -> source column. A column the caller named must exist; defaults may not.

    Columns named ``rating`` and ``label`` are read as numbers without being named.
    """
    given = dict(columns or {})
    unknown = sorted(set(given) - set(CANONICAL))
    if unknown:
        raise DataError.at(
            path, None, f"unknown column roles {unknown}; expected some of {list(CANONICAL)}"
        )
    mapping = {**_DEFAULT_COLUMNS, "rating": "rating", "label": "label", **given}
    for name, source in list(mapping.items()):
        if source in available:
            continue
        if name in ("timestamp", "rating", "label") and name not in given:
            del mapping[name]  # optional; without a time column, row order is the time
            continue
        raise DataError.at(
            path, "header", f"no column '{source}' for {name} (columns: {', '.join(available)})"
        )
    return mapping


# ---------------------------------------------------------------- RecBole atomic files


def read_atomic_header(path: str | Path) -> dict[str, str]:
    """Field name -> type, from the first line of an atomic file (tab-separated ``name:type``)."""
    path = Path(path)
    line = next(_decoded_lines(path), "").rstrip("\r\n")
    if not line:
        raise DataError.at(path, 1, "empty header, expected 'name:type' fields separated by tabs")
    fields: dict[str, str] = {}
    for entry in line.split("\t"):
        name, _, kind = entry.rpartition(":")
        if not name or kind not in ATOMIC_TYPES:
            raise DataError.at(
                path, 1, f"header field {entry!r}: expected name:type with type in {ATOMIC_TYPES}"
            )
        if name in fields:
            raise DataError.at(path, 1, f"header field '{name}' appears twice")
        fields[name] = kind
    return fields


def _split_tokens(column: str) -> pl.Expr:
    return pl.col(column).str.split(" ").list.eval(pl.element().filter(pl.element() != ""))


def _float_lists(frame: pl.DataFrame, column: str, path: Path) -> pl.Series:
    """A float_seq column as List(Float64); a token that is not a number names its line."""
    tokens = frame.select("_line", _split_tokens(column)).explode(column)
    _to_float(tokens, column, path, column)  # raises on the first bad token
    return frame.select(_split_tokens(column).cast(pl.List(pl.Float64)))[column]


def _read_atomic_table(path: Path, overrides: Mapping[str, str] | None = None) -> pl.DataFrame:
    """All fields of an atomic file with RecBole's types (``overrides`` replace declared types).

    token -> Utf8, token_seq -> List(Utf8) (space-separated), float -> Float64,
    float_seq -> List(Float64). Empty fields are null.
    """
    path = Path(path)
    kinds = {**read_atomic_header(path), **(overrides or {})}
    frame = _read_delimited(path, separator="\t", names=list(kinds), skip=1)
    typed = []
    for name, kind in kinds.items():
        if kind == "float":
            typed.append(_to_float(frame, name, path, name))
        elif kind == "token_seq":
            typed.append(frame.select(_split_tokens(name))[name])
        elif kind == "float_seq":
            typed.append(_float_lists(frame, name, path))
    return frame.with_columns(typed)


def read_atomic_interactions(
    path: str | Path,
    user_field: str = "user_id",
    item_field: str = "item_id",
    time_field: str = "timestamp",
    rating_field: str = "rating",
) -> pl.DataFrame:
    """An ``.inter`` file as the canonical frame; other fields are kept under their own names.

    A file without ``time_field`` gets the row order as time; ``rating_field`` is optional.
    """
    path = Path(path)
    declared = read_atomic_header(path)
    sources = {"user": user_field, "item": item_field}
    for name in (user_field, item_field):
        if name not in declared:
            raise DataError.at(path, 1, f"no field '{name}' in the header ({', '.join(declared)})")
    for role, name in (("timestamp", time_field), ("rating", rating_field), ("label", "label")):
        if name in declared:
            sources[role] = name
    # ids stay raw strings and time / rating / label are numbers whatever the header declares
    overrides = {user_field: "token", item_field: "token"}
    overrides.update({sources[r]: "float" for r in _NUMERIC if r in sources})
    return _canonical(_read_atomic_table(path, overrides), path, sources)


def read_atomic_features(path: str | Path, id_field: str) -> pl.DataFrame:
    """An ``.item`` / ``.user`` file: ``id`` (Utf8, unique) first, then the typed features."""
    path = Path(path)
    declared = read_atomic_header(path)
    if id_field not in declared:
        raise DataError.at(path, 1, f"no field '{id_field}' in the header ({', '.join(declared)})")
    frame = _read_atomic_table(path, {id_field: "token"}).rename({id_field: "id"})
    _require_values(frame, path, {"id": id_field})
    repeated = frame["id"].is_duplicated()
    if repeated.any():
        row = int(repeated.arg_true()[0])
        shown = frame["id"][row]
        raise DataError.at(path, _place(frame, row), f"id {shown!r} appears more than once")
    return frame.drop("_line")


# ---------------------------------------------------------------- CSV / TSV / Parquet / text


def read_table(
    path: str | Path, columns: Mapping[str, str] | None = None, *, fmt: str | None = None
) -> pl.DataFrame:
    """A CSV, TSV (no quoting) or Parquet file with a header, as the canonical frame.

    ``columns`` maps canonical names (user, item, timestamp, rating, label) to the file's column
    names; defaults: user_id, item_id, timestamp. Without a timestamp column (and none named),
    row order is the time. Datetime columns in Parquet become epoch seconds.
    """
    path = Path(path)
    fmt = fmt or FORMATS.get(path.suffix.lower())
    if fmt == "parquet":
        frame = _read_parquet(path)
    elif fmt in ("csv", "tsv"):
        frame = _read_delimited(
            path, separator="," if fmt == "csv" else "\t", names=None, skip=0, quoted=fmt == "csv"
        )
    else:
        raise ArgumentError(f"read_table reads csv, tsv or parquet, not {fmt!r}")
    available = [c for c in frame.columns if c != "_line"]
    return _canonical(frame, path, column_mapping(columns, available, path))


def _read_parquet(path: Path) -> pl.DataFrame:
    """A Parquet file's table; a file that is not Parquet (or is empty) is a ``DataError``."""
    if path.stat().st_size == 0:
        raise DataError.at(path, None, "the file is empty")
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise DataError.at(path, None, f"not a Parquet file ({first_line(error)})") from error
    if frame.height == 0:
        raise DataError.at(path, None, "no data rows, expected at least one")
    return frame


def _read_pairs_slow(path: Path) -> pl.DataFrame:
    """Any whitespace between and around the two ids; blank lines skipped; names bad lines."""
    lines = [line.rstrip("\r\n") for line in _decoded_lines(path)]
    frame = (
        pl.DataFrame({"text": lines}, schema={"text": pl.Utf8})
        .with_row_index("_line", offset=1)
        .filter(pl.col("text").str.strip_chars() != "")
    )
    parts = pl.col("text").str.extract_groups(r"^\s*(\S+)\s+(\S+)\s*$")
    frame = frame.with_columns(
        parts.struct.field("1").alias("user"), parts.struct.field("2").alias("item")
    )
    bad = frame["user"].is_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        raise DataError.at(
            path, _place(frame, row), f"{frame['text'][row]!r}: expected 'user item'"
        )
    return frame.select("_line", "user", "item")


def _is_id_name(token: str) -> bool:
    return token.lower().split(":", 1)[0] in HEADER_NAMES


def _check_no_header(frame: pl.DataFrame, path: Path) -> None:
    """The ``user item`` format has no header: a first line that looks like one is an error.

    A first line is a header when both of its fields are column names (``user item``,
    ``user_id item_id``, ``userId itemId``, ``user_id:token item_id:token``, ... compared
    lower-cased), or when both are non-numeric while every other line holds two integers.
    """
    user, item = frame["user"][0], frame["item"][0]
    named = _is_id_name(user) and _is_id_name(item)
    rest = frame.slice(1)
    numeric_rest = (
        rest.height > 0
        and rest.select(
            pl.all_horizontal(pl.col("user", "item").str.contains(r"^[0-9]+$")).all()
        ).item()
    )
    text_first = not (user.isdigit() or item.isdigit())
    if named or (text_first and numeric_rest):
        raise DataError.at(
            path, _place(frame, 0),
            f"'{user} {item}' looks like a header; the 'user item' format has none "
            "(remove the line, or use a .csv/.tsv file with a header)",
        )  # fmt: skip


def read_user_item_text(path: str | Path) -> pl.DataFrame:
    """``user item`` per line (the paper repositories' format); line order is time order.

    The ids are separated by any whitespace; blank lines are skipped. There is no header line:
    a first line that looks like one is an error (see ``_check_no_header``).
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise DataError.at(path, None, "the file is empty")
    try:  # fast path: exactly one space between the two ids on every line
        frame = pl.read_csv(
            path, separator=" ", has_header=False, quote_char=None,
            schema={"user": pl.Utf8, "item": pl.Utf8},
        ).with_row_index("_line", offset=1)  # fmt: skip
        clean = frame.height > 0 and frame.null_count().sum_horizontal().item() == 0
    except pl.exceptions.PolarsError:
        clean = False
    if not clean:
        frame = _read_pairs_slow(path)
    if frame.height == 0:
        raise DataError.at(path, None, "no data rows, expected at least one")
    _check_no_header(frame, path)
    return _canonical(frame, path, {"user": "user", "item": "item"})


def read_interactions(
    path: str | Path, fmt: str | None = None, columns: Mapping[str, str] | None = None
) -> pl.DataFrame:
    """Read any supported file; the format comes from the suffix unless ``fmt`` is given.

    ``fmt`` is one of atomic, csv, tsv, parquet, txt. ``columns`` maps canonical names to the
    file's names (for atomic files: field names without the ``:type``); txt takes none.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError.at(path, None, "no such file")
    fmt = fmt or FORMATS.get(path.suffix.lower())
    if fmt not in FORMATS.values():
        known = ", ".join(f"{s} ({f})" for s, f in FORMATS.items())
        what = f"unknown format {fmt!r}" if fmt else f"cannot tell the format from {path.suffix!r}"
        raise DataError.at(path, None, f"{what}; expected one of {known} (data.format)")
    if fmt == "atomic":
        names = {**_DEFAULT_COLUMNS, "rating": "rating", **(columns or {})}
        return read_atomic_interactions(
            path, names["user"], names["item"], names["timestamp"], names["rating"]
        )
    if fmt == "txt":
        if columns:
            raise DataError.at(
                path, None, "the 'user item' text format has no column names to map (data.columns)"
            )
        return read_user_item_text(path)
    return read_table(path, columns, fmt=fmt)
