"""``build_corpus`` for Parquet data larger than memory: polars' streaming engine, arrays on disk.

Why: the eager path holds the whole interaction frame (ids as strings) in memory several times
over. Here every step is a lazy query run by the streaming engine (``scan_parquet`` ->
filters -> ``sink_parquet`` / ``collect_batches``); only per-user and per-item tables (one row
per id) are ever in memory, and ids keep their file type until the vocabulary is written. The
CSR arrays are written batch by batch into ``.npy`` files (``np.lib.format.open_memmap``) and
read back with ``np.load(mmap_mode="r")``: read-only views the operating system pages in as
they are used.

The corpus is the eager one (``corpus.build_corpus``) exactly: the same checks of the values,
the same duplicate policy, rating filter, iterative k-core (the same rounds), time order (ties
by file order), ``max_len``, codes by first appearance in the file, and the same load report.

The result is cached under ``cache_dir/<key>/``: the key is a sha256 of every source file's
resolved path, size and modification time, the column mapping, the preprocessing settings and
``CACHE_VERSION``, so a changed file or filter builds a new entry; an entry is written to a
scratch folder and renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from seqrec.data.corpus import (
    DUPLICATE_POLICIES,
    FilterStep,
    SequenceCorpus,
    Sequences,
    Vocabulary,
)
from seqrec.data.errors import DataError, SeqrecError, first_line
from seqrec.data.readers import CANONICAL, column_mapping

CACHE_VERSION = 1
ENGINE = "streaming"
SORT_ROWS = 4_000_000  # rows sorted at once
GROUP_ROWS = 4_000_000  # rows whose hashes are grouped at once (duplicates)
_NUMERIC = ("timestamp", "rating", "label")
_CONTROL = r"[\x00-\x1f\x7f-\x9f]"  # as the readers: C0 and C1 control characters
_ARRAYS = ("offsets", "items", "timestamps", "source_rows")


@dataclass(frozen=True)
class Preprocessing:
    """The settings ``build_corpus`` takes, as one value (it is part of the cache key)."""

    min_rating: float | None = None
    min_user_interactions: int = 0
    min_item_interactions: int = 0
    max_len: int | None = None
    duplicates: str = "keep"


def parquet_sources(path: str | Path) -> list[Path]:
    """A Parquet file, or a folder's ``*.parquet`` files in name order (the row order)."""
    path = Path(path).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.glob("*.parquet") if p.is_file())
        if not files:
            raise DataError.at(path, None, "no .parquet files in the folder")
        return files
    if not path.is_file():
        raise DataError.at(path, None, "no such file or folder")
    if path.stat().st_size == 0:
        raise DataError.at(path, None, "the file is empty")
    return [path]


def cache_key(sources: list[Path], columns: Mapping[str, str], prep: Preprocessing) -> str:
    """sha256 of what the corpus depends on: the files (path, size, mtime) and the settings."""
    files = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in sources]
    blob = json.dumps(
        {"v": CACHE_VERSION, "files": files, "columns": dict(columns), "prep": asdict(prep)},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


# ---------------------------------------------------------------- scan and check


def _scan(
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


def _step(name: str, before: tuple[int, int, int], after: tuple[int, int, int]) -> FilterStep:
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
    return kept, count, [_step("exact duplicates dropped", _stats(frame), _stats(kept))]


def _first_seen_query(frame: pl.LazyFrame, key: str) -> pl.LazyFrame:
    return frame.group_by(key).agg(pl.col("_src").min().alias("_first"), pl.len().alias("_n"))


def _first_seen(frame: pl.LazyFrame, key: str) -> pl.DataFrame:
    """One row per ``key`` value in order of first appearance in the file, with its row count."""
    return _first_seen_query(frame, key).collect(engine=ENGINE).sort("_first")


def _k_core(
    frame: pl.LazyFrame, min_user: int, min_item: int
) -> tuple[pl.LazyFrame, FilterStep, pl.DataFrame]:
    """As ``corpus.k_core``, round for round: each round counts the rows the last one kept.

    Also returns the last round's user table (``_first_seen`` of the kept rows), which saves
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
            return current, _step(name, before, stats), users.sort("_first")
        current = frame.join(good_users.lazy(), on="user", how="semi").join(
            good_items.lazy(), on="item", how="semi"
        )


def _filtered(
    frame: pl.LazyFrame, prep: Preprocessing, rows: int, folder: Path
) -> tuple[pl.LazyFrame, int, list[FilterStep], pl.DataFrame]:
    """Duplicates, rating threshold and k-core, as in ``build_corpus``; the kept users' table."""
    frame, duplicate_rows, steps = _duplicates(frame, prep.duplicates, rows, folder)
    if prep.min_rating is not None:
        if "rating" not in frame.collect_schema():
            raise DataError("data.min_rating is set but the data has no rating column")
        kept = frame.filter(pl.col("rating") >= prep.min_rating)
        steps.append(_step(f"rating >= {prep.min_rating:g}", _stats(frame), _stats(kept)))
        frame = kept
    if prep.min_user_interactions > 1 or prep.min_item_interactions > 1:
        frame, step, users = _k_core(frame, prep.min_user_interactions, prep.min_item_interactions)
        steps.append(step)
    else:
        users = _first_seen(frame, "user")
    return frame, duplicate_rows, steps, users


# ---------------------------------------------------------------- order, encode, write


_COLUMNS = {"items": ("_i", np.int64), "timestamps": ("timestamp", np.float64),
            "source_rows": ("_src", np.int64)}  # fmt: skip


def _write_arrays(frame: pl.LazyFrame, n_rows: int, folder: Path) -> None:
    """Stream the ordered rows (``_i``, ``timestamp``, ``_src``) into ``.npy`` files.

    Each file gets its header, then the batches appended as raw bytes: the same files as
    ``np.save`` writes, without ever mapping them into this process (``_load`` maps them).
    """
    files = {name: (folder / f"{name}.npy").open("wb") for name in _COLUMNS}
    try:
        for name, (_, dtype) in _COLUMNS.items():
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                      "fortran_order": False, "shape": (n_rows,)}  # fmt: skip
            np.lib.format.write_array_header_1_0(files[name], header)
        written = 0
        names = [column for column, _ in _COLUMNS.values()]
        for batch in frame.select(names).collect_batches(engine=ENGINE):
            for name, (column, dtype) in _COLUMNS.items():
                files[name].write(batch[column].to_numpy().astype(dtype, copy=False).tobytes())
            written += batch.height
    finally:
        for file in files.values():
            file.close()
    if written != n_rows:
        raise RuntimeError(f"wrote {written} of {n_rows} rows")  # a bug, not bad input


def _partitions(lengths: np.ndarray, sort_rows: int) -> list[tuple[int, int]]:
    """Consecutive user-code ranges of about ``sort_rows`` rows each (a user is never split)."""
    ends = np.cumsum(lengths)
    cuts = np.searchsorted(ends, np.arange(sort_rows, int(ends[-1]), sort_rows), side="left") + 1
    bounds = np.unique(np.concatenate([[0], cuts, [len(lengths)]]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def _ordered(
    frame: pl.LazyFrame,
    users: pl.DataFrame,
    max_len: int | None,
    sort_rows: int,
    folder: Path,
) -> list[Path]:
    """Rows sorted by (user code, time, file order) into Parquet parts, newest ``max_len`` kept.

    Users are sorted a range of codes at a time, so the sort never holds more than about
    ``sort_rows`` rows; the parts, in order, are the global order.
    """
    lengths = users["_n"].to_numpy().astype(np.int64)
    coded_path = folder / "coded.parquet"  # the filters run once, not once per range of users
    frame.join(users.lazy().select("user", "_u"), on="user").select(
        "_u", "item", "timestamp", "_src"
    ).sink_parquet(coded_path, engine=ENGINE)
    coded = pl.scan_parquet(coded_path)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    parts = []
    for index, (low, high) in enumerate(_partitions(lengths, sort_rows)):
        part = coded.filter(pl.col("_u").is_between(low, high, closed="left"))
        part = part.sort(["_u", "timestamp", "_src"])
        if max_len is not None:
            ends = pl.lit(pl.Series(starts[1:]))  # the position after each user's last row
            part = part.with_row_index("_pos", offset=int(starts[low]))
            part = part.filter(pl.col("_pos") >= ends.gather(pl.col("_u")) - max_len)
        path = folder / f"ordered-{index:05d}.parquet"
        part.select("item", "timestamp", "_src").sink_parquet(path, engine=ENGINE)
        parts.append(path)
    coded_path.unlink()
    return parts


def _build(
    sources: list[Path], path: Path, columns, prep: Preprocessing, folder: Path, sort_rows: int
) -> dict:
    """Filter, order, encode and write the arrays and vocabularies into ``folder``."""
    frame, rows_read = _scan(sources, path, columns)
    frame, duplicate_rows, steps, users = _filtered(frame, prep, rows_read, folder)
    users = users.with_row_index("_u")
    if users.height == 0:
        removed = "; ".join(s.describe() for s in steps)
        raise DataError(f"no interactions left after filtering: {removed}")
    parts = _ordered(frame, users, prep.max_len, sort_rows, folder)
    final = pl.scan_parquet(parts)
    items = _first_seen(final, "item").with_row_index("_i", offset=1)
    lengths = users["_n"].to_numpy().astype(np.int64)
    if prep.max_len is not None:
        n_items = frame.select(pl.col("item").n_unique()).collect(engine=ENGINE).item()
        before = (int(lengths.sum()), users.height, n_items)
        lengths = np.minimum(lengths, prep.max_len)  # every user keeps at least one row
        after = (int(lengths.sum()), users.height, items.height)
        steps.append(_step(f"keep newest {prep.max_len} per user", before, after))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    np.save(folder / "offsets.npy", offsets)
    coded = final.join(items.lazy().select("item", "_i"), on="item", maintain_order="left")
    _write_arrays(coded, int(offsets[-1]), folder)
    for part in parts:
        part.unlink()
    np.save(folder / "users.npy", users["user"].cast(pl.Utf8).to_numpy().astype(str))
    np.save(folder / "item_ids.npy", items["item"].cast(pl.Utf8).to_numpy().astype(str))
    return {
        "rows_read": rows_read,
        "duplicate_rows": duplicate_rows,
        "duplicates": "drop" if prep.duplicates == "drop" else "keep",
        "filters": [asdict(s) for s in steps],
    }


def _load(folder: Path, meta: dict) -> SequenceCorpus:
    """The cached corpus: CSR arrays memory-mapped read-only, vocabularies in memory."""
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
    return SequenceCorpus(
        sequences=Sequences(arrays["offsets"], arrays["items"], arrays["timestamps"]),
        users=Vocabulary(np.load(folder / "users.npy")),
        items=Vocabulary(np.load(folder / "item_ids.npy"), offset=1),
        filters=tuple(FilterStep(**step) for step in meta["filters"]),
        source_rows=arrays["source_rows"],
        rows_read=meta["rows_read"],
        duplicate_rows=meta["duplicate_rows"],
        duplicates=meta["duplicates"],
    )


def build_corpus_streaming(
    path: str | Path,
    cache_dir: str | Path,
    columns: Mapping[str, str] | None = None,
    prep: Preprocessing = Preprocessing(),  # frozen: a shared default is safe
    sort_rows: int = SORT_ROWS,
) -> SequenceCorpus:
    """The corpus of a Parquet file or folder of part files, built once per cache key.

    Equal to ``build_corpus(read_interactions(path), ...)`` on data that fits in memory; its CSR
    arrays are read-only memory maps of ``cache_dir/<key>/*.npy``. ``sort_rows`` bounds the rows
    sorted at once (memory, not the result: it is not part of the cache key).
    """
    if prep.max_len is not None and prep.max_len < 1:
        raise SeqrecError(f"max_len must be at least 1, got {prep.max_len}")
    path = Path(path).expanduser()
    sources = parquet_sources(path)
    folder = Path(cache_dir).expanduser() / cache_key(sources, columns or {}, prep)
    meta_file = folder / "corpus.json"
    if meta_file.is_file():
        return _load(folder, json.loads(meta_file.read_text(encoding="utf-8")))
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        meta = _build(sources, path, columns, prep, scratch, sort_rows)
        (scratch / "corpus.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        try:
            os.rename(scratch, folder)
        except OSError:  # built meanwhile by another process: theirs is the same corpus
            if not meta_file.is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _load(folder, json.loads(meta_file.read_text(encoding="utf-8")))
