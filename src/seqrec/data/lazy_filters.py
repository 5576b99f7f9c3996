"""The streaming engine's versions of the readers' value checks and ``build_corpus``' filters.

Why apart from ``streaming.py``: these are the steps whose results must equal the eager path's
(``readers._canonical``, ``corpus._duplicates``, ``corpus.k_core``), so they sit side by side
here. Each runs lazy queries on polars' streaming engine; what is collected has one row per user
or item (or per range of rows, see ``GROUP_ROWS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from seqrec.data.corpus import DUPLICATE_POLICIES, FilterStep
from seqrec.data.errors import DataError, SeqrecError, first_line
from seqrec.data.readers import CANONICAL, column_mapping

ENGINE = "streaming"
GROUP_ROWS = 4_000_000  # rows whose hashes are grouped at once (duplicates)
_NUMERIC = ("timestamp", "rating", "label")
_CONTROL = r"[\x00-\x1f\x7f-\x9f]"  # as the readers: C0 and C1 control characters


# ---------------------------------------------------------------- scan and check


def scan_sources(
    sources: list[Path], path: Path, columns: Mapping[str, str] | None
) -> tuple[pl.LazyFrame, int]:
    """The canonical columns (ids in their file type), the other columns and ``_src``; rows."""
    try:
        scan = pl.scan_parquet([str(p) for p in sources])
        schema = scan.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as error:
        raise DataError.at(path, None, f"not a Parquet file ({first_line(error)})") from error
    mapping = column_mapping(columns, list(schema), path)
    clash = [c for c, s in mapping.items() if s != c and c in schema]
    if clash:
        raise DataError.at(
            path,
            "header",
            f"column '{clash[0]}' exists and would be replaced by '{mapping[clash[0]]}'",
        )
    rows = _check(scan.with_row_index("_src"), schema, path, mapping)
    typed = [_ids(schema, path, mapping[c]).alias(c) for c in ("user", "item")]
    typed += [_number(schema, mapping[c]).alias(c) for c in _NUMERIC if c in mapping]
    if "timestamp" not in mapping:  # as the readers: the row order is the time
        typed.append(pl.col("_src").cast(pl.Float64).alias("timestamp"))
    sources_used = set(mapping.values())
    rest = [pl.col(c) for c in schema if c not in sources_used and c not in CANONICAL]
    return scan.with_row_index("_src").select(*typed, *rest, "_src"), rows


def _ids(schema: pl.Schema, path: Path, source: str) -> pl.Expr:
    dtype = schema[source]
    if dtype.is_float() or dtype == pl.Boolean:
        problem = f"field '{source}' has type {dtype}, expected ids (text or integers)"
        raise DataError.at(path, None, problem)
    return (
        pl.col(source) if dtype.is_integer() or dtype == pl.Utf8 else pl.col(source).cast(pl.Utf8)
    )


def _number(schema: pl.Schema, source: str) -> pl.Expr:
    dtype = schema[source]
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return pl.col(source).dt.epoch("us").cast(pl.Float64) / 1e6
    if dtype == pl.Utf8:
        return pl.col(source).str.strip_chars(" ").cast(pl.Float64, strict=False)
    return pl.col(source).cast(pl.Float64, strict=False)


def _check(scan: pl.LazyFrame, schema: pl.Schema, path: Path, mapping: Mapping[str, str]) -> int:
    """The number of rows, after one streaming pass that names the first row (per check) whose
    value the readers would reject."""
    checks: dict[str, tuple[pl.Expr, str]] = {}
    for role, source in mapping.items():
        if role not in CANONICAL:
            continue
        column = pl.col(source)
        checks[f"{role} null"] = (column.is_null(), f"empty field '{source}', expected a value")
        if role in _NUMERIC:
            bad = ~_number(schema, source).is_finite().fill_null(False) & column.is_not_null()
            checks[f"{role} number"] = (bad, f"field '{source}' is not a finite number")
        elif schema[source] == pl.Utf8:
            checks[f"{role} empty"] = (column.str.strip_chars() == "", f"field '{source}' is empty")
            checks[f"{role} control"] = (
                column.str.contains(_CONTROL),
                f"field '{source}' holds a control character, expected an id",
            )
    exprs = [pl.col("_src").filter(bad).min().alias(name) for name, (bad, _) in checks.items()]
    try:
        first = scan.select(exprs).collect(engine=ENGINE).row(0, named=True)
    except pl.exceptions.PolarsError as error:
        raise DataError.at(path, None, f"cannot read the data ({first_line(error)})") from error
    found = [(row, checks[name][1]) for name, row in first.items() if row is not None]
    if found:
        row, problem = min(found)
        raise DataError.at(path, f"row {row + 1}", problem)
    rows = scan.select(pl.len()).collect(engine=ENGINE).item()
    if rows == 0:
        raise DataError.at(path, None, "no data rows, expected at least one")
    return rows


# ---------------------------------------------------------------- filters


def _stats(frame: pl.LazyFrame) -> tuple[int, int, int]:
    row = frame.select(pl.len(), pl.col("user").n_unique(), pl.col("item").n_unique())
    return tuple(row.collect(engine=ENGINE).row(0))


def step(name: str, before: tuple[int, int, int], after: tuple[int, int, int]) -> FilterStep:
    return FilterStep(name, *(b - a for b, a in zip(before, after, strict=True)))


def _repeats(frame: pl.LazyFrame, rows: int, folder: Path) -> pl.DataFrame:
    """``_src`` of every row identical to an earlier row, ascending.

    Rows are grouped by a 64-bit hash of all their columns (written once to ``folder``), which
    keeps the group table at a few bytes per row whatever the ids are; only rows whose hash
    occurs more than once are then compared exactly (so a hash collision never makes a
    duplicate). The hashes are grouped a range at a time, about ``GROUP_ROWS`` rows each, which
    bounds the group table.
    """
    data = [c for c in frame.collect_schema() if c != "_src"]
    hashes = folder / "hashes.parquet"
    frame.select(pl.struct(data).hash(seed=0).alias("_h"), "_src").sink_parquet(
        hashes, engine=ENGINE
    )
    shares = max(1, -(-rows // GROUP_ROWS))
    shared = [
        pl.scan_parquet(hashes).filter(pl.col("_h") % shares == share).group_by("_h").len()
        .filter(pl.col("len") > 1).select("_h").collect(engine=ENGINE)
        for share in range(shares)
    ]  # fmt: skip
    rows_of = pl.scan_parquet(hashes).join(pl.concat(shared).lazy(), on="_h", how="semi")
    candidates = frame.join(rows_of.select("_src"), on="_src", how="semi")
    candidates = candidates.collect(engine=ENGINE).sort("_src")
    hashes.unlink()
    repeat = ~candidates.select(pl.struct(data).is_first_distinct()).to_series()
    return candidates.filter(repeat).select("_src")


def _duplicates(
    frame: pl.LazyFrame, policy: str, rows: int, folder: Path
) -> tuple[pl.LazyFrame, int, list[FilterStep]]:
    """As ``corpus._duplicates``: the first of identical rows is the original, the rest repeats."""
    if policy not in DUPLICATE_POLICIES:
        raise SeqrecError(
            f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {policy!r}"
        )
    repeats = _repeats(frame, rows, folder)
    count = repeats.height
    if count and policy == "error":
        row = int(repeats["_src"][0])
        first = frame.filter(pl.col("_src") == row).collect(engine=ENGINE)
        values = {c: first[c][0] for c in ("user", "item", "timestamp")}
        values.update(user=str(values["user"]), item=str(values["item"]))  # ids as the readers'
        shown = ", ".join(f"{c} {v!r}" for c, v in values.items())
        raise DataError(
            f"data row {row + 1} ({shown}) is identical to an earlier row; {count:,} such rows "
            "(data.duplicates: error; use keep or drop)"
        )
    if policy != "drop":
        return frame, count, []
    kept = frame.join(repeats.lazy(), on="_src", how="anti")
    return kept, count, [step("exact duplicates dropped", _stats(frame), _stats(kept))]


def _first_seen_query(frame: pl.LazyFrame, key: str) -> pl.LazyFrame:
    return frame.group_by(key).agg(pl.col("_src").min().alias("_first"), pl.len().alias("_n"))


def first_seen(frame: pl.LazyFrame, key: str) -> pl.DataFrame:
    """One row per ``key`` value in order of first appearance in the file, with its row count."""
    return _first_seen_query(frame, key).collect(engine=ENGINE).sort("_first")


def _k_core(
    frame: pl.LazyFrame, min_user: int, min_item: int
) -> tuple[pl.LazyFrame, FilterStep, pl.DataFrame]:
    """As ``corpus.k_core``, round for round: each round counts the rows the last one kept.

    Also returns the last round's user table (``first_seen`` of the kept rows), which saves
    the pass that would compute it again.
    """
    current, before = frame, None
    while True:
        users, items = pl.collect_all(
            [_first_seen_query(current, "user"), current.group_by("item").len()], engine=ENGINE
        )
        stats = (int(users["_n"].sum()), users.height, items.height)
        before = before or stats
        good_users = users.filter(pl.col("_n") >= min_user).select("user")
        good_items = items.filter(pl.col("len") >= min_item).select("item")
        if good_users.height == users.height and good_items.height == items.height:
            name = f"k-core (users >= {min_user}, items >= {min_item})"
            return current, step(name, before, stats), users.sort("_first")
        current = frame.join(good_users.lazy(), on="user", how="semi").join(
            good_items.lazy(), on="item", how="semi"
        )


def filtered(
    frame: pl.LazyFrame,
    rows: int,
    folder: Path,
    *,
    duplicates: str,
    min_rating: float | None,
    min_user: int,
    min_item: int,
) -> tuple[pl.LazyFrame, int, list[FilterStep], pl.DataFrame]:
    """Duplicates, rating threshold and k-core, as in ``build_corpus``; the kept users' table
    (``first_seen``). ``folder`` takes scratch files."""
    frame, duplicate_rows, steps = _duplicates(frame, duplicates, rows, folder)
    if min_rating is not None:
        if "rating" not in frame.collect_schema():
            raise DataError("data.min_rating is set but the data has no rating column")
        kept = frame.filter(pl.col("rating") >= min_rating)
        steps.append(step(f"rating >= {min_rating:g}", _stats(frame), _stats(kept)))
        frame = kept
    if min_user > 1 or min_item > 1:
        frame, core, users = _k_core(frame, min_user, min_item)
        steps.append(core)
    else:
        users = first_seen(frame, "user")
    return frame, duplicate_rows, steps, users
