"""From an interaction frame to a compact, encoded sequence corpus.

The canonical interaction frame (see ``readers.py``) has the columns ``user`` and ``item`` (strings,
the user's raw ids), ``timestamp`` (float) and optionally ``rating`` (float). ``build_corpus``
filters it (rating threshold, iterative k-core), orders each user's interactions by time and
encodes ids. Equal timestamps keep the order of the file: the sort is stable, so "the last item"
of a user whose final interactions share one second is the one written last in the file.

Every row read is accounted for (``SequenceCorpus.load_report``): rows read, exact duplicates
(rows identical to an earlier row in every column, kept or dropped by policy), what each filter
removed, and what is kept, so that read - removed = kept. In a source without time (the
``user item`` text) the row order is the time, so a repeated line is a repeat, not a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from seqrec.data.errors import DataError, SeqrecError, UnknownIdError
from seqrec.data.sequences import Sequences

DUPLICATE_POLICIES = ("keep", "drop", "error")


@dataclass(frozen=True)
class Vocabulary:
    """Maps codes to raw ids and back. ``raw[code]`` is the raw id of ``code``."""

    raw: np.ndarray  # (n,) of str
    offset: int = 0  # first real code: 1 for items (0 is padding), 0 for users
    _index: dict[str, int] = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        # tolist() first: iterating numpy strings one by one is ~20x slower
        codes = range(self.offset, self.offset + len(self.raw))
        index = dict(zip(map(str, np.asarray(self.raw).tolist()), codes, strict=True))
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.raw)

    def encode(self, raw_ids: list[str] | np.ndarray, what: str = "id") -> np.ndarray:
        """Codes of raw ids; an unknown id is an error that names it."""
        missing = [r for r in raw_ids if str(r) not in self._index]
        if missing:
            shown = ", ".join(repr(str(m)) for m in missing[:5])
            raise UnknownIdError(f"unknown {what}: {shown} ({len(missing)} not in the vocabulary)")
        return np.array([self._index[str(r)] for r in raw_ids], dtype=np.int64)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.raw[np.asarray(codes, dtype=np.int64) - self.offset]


@dataclass(frozen=True)
class FilterStep:
    """What one preprocessing step removed, so nothing disappears silently."""

    name: str
    rows_removed: int
    users_removed: int
    items_removed: int

    def describe(self) -> str:
        return (
            f"{self.name}: removed {self.rows_removed:,} interactions, "
            f"{self.users_removed:,} users, {self.items_removed:,} items"
        )


@dataclass(frozen=True)
class SequenceCorpus:
    """Every user's interactions, time-ordered and encoded. Row ``u`` belongs to user code ``u``."""

    sequences: Sequences
    users: Vocabulary
    items: Vocabulary  # offset 1: code 0 is padding
    filters: tuple[FilterStep, ...] = ()
    source_rows: np.ndarray | None = None  # (nnz,) row of each interaction in the input frame
    rows_read: int = 0  # rows of the input frame, before anything was removed
    duplicate_rows: int = 0  # rows identical to an earlier row in every column
    duplicates: str = "keep"  # what was done with them: keep or drop (then also a filter step)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self.sequences.items)

    def load_report(self) -> list[str]:
        """One line per step from the rows read to the rows kept; read - removed = kept."""
        lines = [f"read {self.rows_read:,} interactions"]
        done = "dropped" if self.duplicates == "drop" else "kept"
        lines.append(
            f"exact duplicates (rows identical to an earlier row): {self.duplicate_rows:,}, {done}"
        )
        lines += [step.describe() for step in self.filters]
        labels = self.sequences.labels
        if labels is not None:
            clicked = int(labels.sum())
            lines.append(
                f"click labels: {clicked:,} clicked, {len(labels) - clicked:,} not clicked "
                "(all kept in the sequences)"
            )
        lines.append(
            f"kept {self.n_interactions:,} interactions ({self.n_users:,} users, "
            f"{self.n_items:,} items)"
        )
        return lines

    def item_counts(self) -> np.ndarray:
        """Interactions per item code, shape (n_items + 1,); index 0 (padding) is 0."""
        return np.bincount(self.sequences.items, minlength=self.n_items + 1)


def _counts(frame: pl.DataFrame) -> tuple[int, int, int]:
    return frame.height, frame["user"].n_unique(), frame["item"].n_unique()


def _step(name: str, before: pl.DataFrame, after: pl.DataFrame) -> FilterStep:
    (r0, u0, i0), (r1, u1, i1) = _counts(before), _counts(after)
    return FilterStep(name, r0 - r1, u0 - u1, i0 - i1)


def k_core(frame: pl.DataFrame, min_user: int, min_item: int) -> pl.DataFrame:
    """Repeat dropping users with < min_user and items with < min_item rows until none remain."""
    while True:
        user_n = pl.len().over("user")
        item_n = pl.len().over("item")
        kept = frame.filter((user_n >= min_user) & (item_n >= min_item))
        if kept.height == frame.height:
            return kept
        frame = kept


def _duplicates(frame: pl.DataFrame, policy: str) -> tuple[pl.DataFrame, int, list[FilterStep]]:
    """(frame after the policy, number of rows identical to an earlier row, the drop step)."""
    if policy not in DUPLICATE_POLICIES:
        raise SeqrecError(
            f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {policy!r}"
        )
    data = [c for c in frame.columns if c != "_src"]
    repeat = frame.select(~pl.struct(data).is_first_distinct()).to_series()
    count = int(repeat.sum())
    if count and policy == "error":
        row = int(repeat.arg_true()[0])
        shown = ", ".join(f"{c} {frame[c][row]!r}" for c in ("user", "item", "timestamp"))
        raise DataError(
            f"data row {row + 1} ({shown}) is identical to an earlier row; {count:,} such rows "
            "(data.duplicates: error; use keep or drop)"
        )
    if policy != "drop":
        return frame, count, []
    kept = frame.filter(~repeat)
    return kept, count, [_step("exact duplicates dropped", frame, kept)]


def build_corpus(
    frame: pl.DataFrame,
    *,
    min_rating: float | None = None,
    min_user_interactions: int = 0,
    min_item_interactions: int = 0,
    max_len: int | None = None,
    duplicates: str = "keep",
) -> SequenceCorpus:
    """Filter, time-order and encode an interaction frame.

    ``duplicates`` (keep, drop, error) says what to do with rows identical to an earlier row in
    every column; their number is in ``load_report`` either way. ``max_len`` keeps each user's
    newest ``max_len`` interactions (counted as a filter step). User codes follow first
    appearance in the file; item codes too, starting at 1.
    """
    if max_len is not None and max_len < 1:
        raise SeqrecError(f"max_len must be at least 1, got {max_len}")
    if frame.height == 0:
        raise DataError("the interaction frame is empty")
    rows_read = frame.height
    frame = frame.with_row_index("_src")
    frame, duplicate_rows, steps = _duplicates(frame, duplicates)
    if min_rating is not None:
        if "rating" not in frame.columns:
            raise DataError("data.min_rating is set but the data has no rating column")
        kept = frame.filter(pl.col("rating") >= min_rating)
        steps.append(_step(f"rating >= {min_rating:g}", frame, kept))
        frame = kept
    if min_user_interactions > 1 or min_item_interactions > 1:
        kept = k_core(frame, min_user_interactions, min_item_interactions)
        name = f"k-core (users >= {min_user_interactions}, items >= {min_item_interactions})"
        steps.append(_step(name, frame, kept))
        frame = kept
    if frame.height == 0:
        removed = "; ".join(s.describe() for s in steps)
        raise DataError(f"no interactions left after filtering: {removed}")

    # codes follow first appearance in the file; _src breaks equal timestamps by file order
    frame = frame.with_columns((pl.col("_src").min().over("user").rank("dense") - 1).alias("_u"))
    frame = frame.sort(["_u", "timestamp", "_src"])
    if max_len is not None:
        position_from_end = pl.int_range(pl.len()).reverse().over("_u")
        kept = frame.filter(position_from_end < max_len)
        steps.append(_step(f"keep newest {max_len} per user", frame, kept))
        frame = kept
    frame = frame.with_columns(pl.col("_src").min().over("item").rank("dense").alias("_i"))

    users = frame.select("_u", "user").unique("_u").sort("_u")
    items = frame.select("_i", "item").unique("_i").sort("_i")
    offsets = np.zeros(users.height + 1, dtype=np.int64)
    np.cumsum(np.bincount(frame["_u"].to_numpy(), minlength=users.height), out=offsets[1:])
    sequences = Sequences(
        offsets=offsets,
        items=frame["_i"].to_numpy().astype(np.int64),
        timestamps=frame["timestamp"].cast(pl.Float64).to_numpy(),
    )
    return SequenceCorpus(
        sequences=sequences,
        users=Vocabulary(users["user"].to_numpy().astype(str)),
        items=Vocabulary(items["item"].to_numpy().astype(str), offset=1),
        filters=tuple(steps),
        source_rows=frame["_src"].to_numpy().astype(np.int64),
        rows_read=rows_read,
        duplicate_rows=duplicate_rows,
        duplicates="drop" if duplicates == "drop" else "keep",
    )
