"""``build_corpus`` for Parquet data larger than memory: polars' streaming engine, arrays on disk.

Why: the eager path holds the whole interaction frame (ids as strings) in memory several times
over. Here every step is a lazy query run by the streaming engine (``scan_parquet`` -> the
checks and filters of ``lazy_filters`` -> a sort a range of users at a time -> ``sink_parquet``
/ ``collect_batches``); what is held in memory is tables with one row per user or item and about
``SORT_ROWS`` rows at a time, and ids keep their file type until the vocabularies are written.
The CSR arrays are appended batch by batch to ``.npy`` files and read back with
``np.load(mmap_mode="r")``: read-only views the operating system pages in as they are used.

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

from seqrec.data.corpus import FilterStep, SequenceCorpus, Sequences, Vocabulary
from seqrec.data.errors import DataError, SeqrecError
from seqrec.data.lazy_filters import ENGINE, filtered, first_seen, scan_sources, step

CACHE_VERSION = 1
SORT_ROWS = 4_000_000  # rows sorted at once
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
    sources: list[Path],
    path: Path,
    columns: Mapping[str, str] | None,
    prep: Preprocessing,
    folder: Path,
    sort_rows: int,
) -> dict:
    """Filter, order, encode and write the arrays and vocabularies into ``folder``."""
    frame, rows_read = scan_sources(sources, path, columns)
    frame, duplicate_rows, steps, users = filtered(
        frame, rows_read, folder, duplicates=prep.duplicates, min_rating=prep.min_rating,
        min_user=prep.min_user_interactions, min_item=prep.min_item_interactions,
    )  # fmt: skip
    users = users.with_row_index("_u")
    if users.height == 0:
        removed = "; ".join(s.describe() for s in steps)
        raise DataError(f"no interactions left after filtering: {removed}")
    parts = _ordered(frame, users, prep.max_len, sort_rows, folder)
    final = pl.scan_parquet(parts)
    items = first_seen(final, "item").with_row_index("_i", offset=1)
    lengths = users["_n"].to_numpy().astype(np.int64)
    if prep.max_len is not None:
        n_items = frame.select(pl.col("item").n_unique()).collect(engine=ENGINE).item()
        before = (int(lengths.sum()), users.height, n_items)
        lengths = np.minimum(lengths, prep.max_len)  # every user keeps at least one row
        after = (int(lengths.sum()), users.height, items.height)
        steps.append(step(f"keep newest {prep.max_len} per user", before, after))
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
