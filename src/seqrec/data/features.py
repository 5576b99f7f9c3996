"""Item and user feature tables aligned with the corpus' codes.

Given a ``Vocabulary`` and a feature frame with an ``id`` column (``read_atomic_features``,
``read_feature_file`` or ``features_from_columns``), every feature becomes a numpy array indexed by
code, so a model gathers the features of a batch of codes with one indexing operation. For items,
row 0 (the padding item) holds no features.

Token codes, per feature: 0 = padding or missing, 1..n the tokens (``vocabularies[name]``, offset
1), n + 1 = unknown: the shared code of tokens carried by fewer than ``min_count`` corpus ids (with
the default ``min_count=1`` no token is unknown). Floats keep NaN for missing values here;
:meth:`FeatureTable.model_array` standardises them for a model.

Ids of the feature file that the corpus does not know are ignored, and corpus ids without a feature
row get "missing" everywhere; both are counted in the table, as are the missing values and unknown
tokens of every feature, so that nothing goes unnoticed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from seqrec.data.corpus import Vocabulary
from seqrec.data.errors import DataError
from seqrec.data.readers import read_atomic_features

KINDS = ("token", "token_seq", "float", "float_seq")
ATOMIC_SUFFIXES = (".item", ".user")
TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}


@dataclass(frozen=True)
class FeatureTable:
    """Per-feature arrays, row ``c`` for code ``c``.

    - token: (n_codes,) int64, a code as in the module docstring, 0 = missing.
    - token_seq: (n_codes, max_tokens) int64, tokens left-aligned, 0 = padding / missing.
    - float: (n_codes,) float64, NaN = missing.
    - float_seq: (n_codes, max_len) float64, left-aligned, NaN = padding / missing.

    ``missing`` and ``unknown`` count, per feature, the corpus ids without a value and the corpus
    ids with at least one unknown token; ``notes`` say where the features came from.
    """

    arrays: dict[str, np.ndarray]
    kinds: dict[str, str]  # feature name -> one of KINDS
    vocabularies: dict[str, Vocabulary]  # token and token_seq features; offset 1
    unknown_ids: tuple[str, ...]  # ids in the feature frame but not in the corpus (ignored)
    ids_without_features: tuple[str, ...]  # corpus ids with no feature row
    offset: int = 1  # first corpus code (1 for items: row 0 is padding; 0 for users)
    missing: dict[str, int] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def n_codes(self) -> int:
        return len(next(iter(self.arrays.values()))) if self.arrays else 0

    def n_token_codes(self, name: str) -> int:
        """Rows an embedding of token feature ``name`` needs: padding, the tokens, unknown."""
        return len(self.vocabularies[name]) + 2

    def unknown_code(self, name: str) -> int:
        return len(self.vocabularies[name]) + 1

    def describe(self) -> str:
        """One line per fact a user should know before training on these features."""

        def some(ids: tuple[str, ...]) -> str:
            return f" (e.g. {', '.join(ids[:5])})" if ids else ""

        lines = [
            f"{name}: {kind} {self.arrays[name].shape}, {self.missing.get(name, 0):,} missing, "
            f"{self.unknown.get(name, 0):,} with unknown tokens"
            for name, kind in self.kinds.items()
        ]
        lines.append(
            f"{len(self.unknown_ids):,} ids in the features are not in the corpus"
            + some(self.unknown_ids)
        )
        lines.append(
            f"{len(self.ids_without_features):,} corpus ids have no features"
            + some(self.ids_without_features)
        )
        return "\n".join([*lines, *self.notes])

    def spec(self, names: Sequence[str] | None = None) -> tuple[dict[str, Any], ...]:
        """JSON-ready shape of each feature (all by default) for a model's config.

        ``codes`` is the embedding size of token features (0 for floats); ``width`` the tokens
        per id (token_seq) or the vector length (float_seq), 1 otherwise.
        """
        out = []
        for name in self.kinds if names is None else names:
            kind, array = self.kinds[name], self.arrays[name]
            codes = self.n_token_codes(name) if kind in ("token", "token_seq") else 0
            width = array.shape[1] if array.ndim == 2 else 1
            out.append({"name": name, "kind": kind, "codes": codes, "width": width})
        return tuple(out)

    def model_array(self, name: str) -> np.ndarray:
        """The array a model stores for feature ``name``, one row per code.

        Token kinds: the codes (int64). Float kinds: float32 values standardised with the mean and
        standard deviation of the corpus ids that have one (per position for float_seq), missing
        values set to 0 (the mean), and one last column flagging ids without any value: (n_codes,
        2) for float, (n_codes, width + 1) for float_seq.
        """
        array, kind = self.arrays[name], self.kinds[name]
        if kind in ("token", "token_seq"):
            return array
        values = array.reshape(len(array), -1)  # (n_codes, width)
        corpus = values[self.offset :]
        with np.errstate(invalid="ignore"):
            present = ~np.isnan(corpus)
            count = present.sum(axis=0)
            mean = np.where(count > 0, np.nansum(corpus, axis=0) / np.maximum(count, 1), 0.0)
            var = np.nansum((corpus - mean) ** 2, axis=0) / np.maximum(count, 1)
        std = np.where(var > 0, np.sqrt(var), 1.0)
        standard = np.nan_to_num((values - mean) / std, nan=0.0)
        flag = np.isnan(values).all(axis=1, keepdims=True)
        return np.concatenate([standard, flag], axis=1).astype(np.float32)


def _kind(name: str, dtype: pl.DataType) -> str:
    if dtype == pl.Utf8:
        return "token"
    if dtype.is_numeric():
        return "float"
    if isinstance(dtype, pl.List) and dtype.inner == pl.Utf8:
        return "token_seq"
    if isinstance(dtype, pl.List) and dtype.inner.is_numeric():
        return "float_seq"
    raise ValueError(
        f"feature '{name}' has type {dtype}; expected Utf8, a number or a list of them"
    )


def _token_codes(values: pl.Series, min_count: int) -> tuple[Vocabulary, pl.Series]:
    """Vocabulary of tokens with >= min_count occurrences in order of first appearance, and each
    value's code (null -> 0, a rarer token -> the unknown code)."""
    present = values.drop_nulls()
    counts = present.value_counts(sort=False, name="_n")
    kept = set(counts.filter(pl.col("_n") >= min_count)[values.name or ""].to_list())
    tokens = present.unique(maintain_order=True)
    tokens = tokens.filter(tokens.is_in(list(kept)))
    unknown = len(tokens) + 1
    codes = values.replace_strict(
        tokens, pl.int_range(1, len(tokens) + 1, eager=True), default=unknown,
        return_dtype=pl.Int64,
    )  # fmt: skip
    codes = pl.select(pl.when(values.is_null()).then(0).otherwise(codes)).to_series()
    return Vocabulary(tokens.to_numpy().astype(str), offset=1), codes


def _exploded(known: pl.DataFrame, name: str, max_len: int | None) -> tuple[pl.DataFrame, int]:
    """(code, position, value) for every list element; the width is the longest list or max_len."""
    rows = known.select("_code", pl.col(name).alias("value")).with_row_index("_r").explode("value")
    rows = rows.with_columns(pl.int_range(pl.len()).over("_r").alias("_pos")).drop_nulls("value")
    width = int(rows["_pos"].max() or 0) + 1 if rows.height else 1
    width = width if max_len is None else max_len
    return rows.filter(pl.col("_pos") < width), width


def _column(
    known: pl.DataFrame, name: str, kind: str, n_codes: int, max_len: int | None, min_count: int
) -> tuple[np.ndarray, Vocabulary | None]:
    """The array of one feature (and its token vocabulary) from rows with a known code."""
    if kind in ("token", "float"):
        codes = known["_code"].to_numpy()
        if kind == "float":
            out = np.full(n_codes, np.nan)
            out[codes] = known[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
            return out, None
        vocab, tokens = _token_codes(known[name], min_count)
        out = np.zeros(n_codes, dtype=np.int64)
        out[codes] = tokens.to_numpy()
        return out, vocab
    rows, width = _exploded(known, name, max_len)
    code, pos = rows["_code"].to_numpy(), rows["_pos"].to_numpy()
    if kind == "float_seq":
        out = np.full((n_codes, width), np.nan)  # (n_codes, width)
        out[code, pos] = rows["value"].cast(pl.Float64).to_numpy()
        return out, None
    vocab, tokens = _token_codes(rows["value"], min_count)
    out = np.zeros((n_codes, width), dtype=np.int64)  # (n_codes, width)
    out[code, pos] = tokens.to_numpy()
    return out, vocab


def _counts(array: np.ndarray, kind: str, offset: int, unknown: int | None) -> tuple[int, int]:
    """(corpus ids without a value, corpus ids with an unknown token) of one feature."""
    rows = array[offset:].reshape(len(array) - offset, -1)  # (n_corpus, width)
    if kind in ("float", "float_seq"):
        return int(np.isnan(rows).all(axis=1).sum()), 0
    return int((rows == 0).all(axis=1).sum()), int((rows == unknown).any(axis=1).sum())


def build_feature_table(
    frame: pl.DataFrame,
    vocabulary: Vocabulary,
    *,
    max_tokens: int | None = None,
    min_count: int = 1,
    notes: tuple[str, ...] = (),
) -> FeatureTable:
    """Arrays of every feature in ``frame`` (an ``id`` column plus features) indexed by code.

    ``max_tokens`` caps the width of token_seq / float_seq features (the first tokens are kept);
    by default the width is the longest list among the corpus' ids. Tokens carried fewer than
    ``min_count`` times by corpus ids share the unknown code.
    """
    if "id" not in frame.columns:
        raise ValueError(f"the feature frame needs an 'id' column; it has {frame.columns}")
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
    repeated = frame["id"].filter(frame["id"].is_duplicated())
    if len(repeated):
        raise ValueError(f"id {repeated[0]!r} has more than one feature row")
    ids = pl.DataFrame(
        {
            "id": vocabulary.raw.astype(str),
            "_code": np.arange(vocabulary.offset, vocabulary.offset + len(vocabulary)),
        }
    )
    frame = frame.with_columns(pl.col("id").cast(pl.Utf8))
    joined = frame.join(ids, on="id", how="left", maintain_order="left")
    known = joined.filter(pl.col("_code").is_not_null())
    n_codes = len(vocabulary) + vocabulary.offset
    kinds = {c: _kind(c, frame.schema[c]) for c in frame.columns if c != "id"}
    arrays, vocabularies, missing, unknown = {}, {}, {}, {}
    for name, kind in kinds.items():
        arrays[name], vocab = _column(known, name, kind, n_codes, max_tokens, min_count)
        if vocab is not None:
            vocabularies[name] = vocab
        code = None if vocab is None else len(vocab) + 1
        missing[name], unknown[name] = _counts(arrays[name], kind, vocabulary.offset, code)
    return FeatureTable(
        arrays=arrays,
        kinds=kinds,
        vocabularies=vocabularies,
        unknown_ids=tuple(joined.filter(pl.col("_code").is_null())["id"].to_list()),
        ids_without_features=tuple(ids.join(frame, on="id", how="anti")["id"].to_list()),
        offset=vocabulary.offset,
        missing=missing,
        unknown=unknown,
        notes=notes,
    )


# ---------------------------------------------------------------- feature sources


def _place(row: int, first_line: int | None) -> str | int:
    """Line ``first_line + row`` of a text file with a header, else ``row N`` (1-based)."""
    return f"row {row + 1}" if first_line is None else first_line + row


def _retyped(
    frame: pl.DataFrame, name: str, kind: str, separator: str, path: Path, first_line: int | None
) -> pl.Series:
    """Column ``name`` as ``kind``: text is split on ``separator`` for the list kinds; a value
    that is not a number where one is expected is an error naming its row."""
    column = frame[name]
    if kind == "token":
        if isinstance(column.dtype, pl.List):
            raise DataError.at(path, "header", f"field '{name}' holds lists, not one token")
        return column.cast(pl.Utf8)
    if column.dtype == pl.Utf8 and kind in ("token_seq", "float_seq"):
        parts = column.str.split(separator).list.eval(pl.element().filter(pl.element() != ""))
        column = parts.alias(name)
    inner = pl.Float64 if kind.startswith("float") else pl.Utf8
    converted = column.cast(inner if kind == "float" else pl.List(inner), strict=False)
    if kind == "float_seq":  # text split into strings: an element cast to null was no number
        bad = converted.list.eval(pl.element().is_null()).list.any().fill_null(False)
    else:
        bad = converted.is_null() & column.is_not_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        shown = column[row].to_list() if isinstance(column.dtype, pl.List) else column[row]
        where = _place(row, first_line)
        raise DataError.at(path, where, f"field '{name}' has {shown!r}, expected numbers")
    return converted


def retype(
    frame: pl.DataFrame,
    kinds: Mapping[str, str],
    separator: str,
    path: str | Path,
    first_line: int | None = None,
) -> pl.DataFrame:
    """``frame`` with the columns named in ``kinds`` converted to those kinds (see ``KINDS``).

    ``first_line``: the file line of the frame's first row, for errors (None: ``row N``).
    """
    for name, kind in kinds.items():
        if kind not in KINDS:
            raise ValueError(f"feature kind of '{name}' is {kind!r}; expected one of {KINDS}")
        if name not in frame.columns:
            fields = ", ".join(c for c in frame.columns if c != "id")
            raise DataError.at(path, "header", f"no field '{name}' to type (fields: {fields})")
        retyped = _retyped(frame, name, kind, separator, Path(path), first_line)
        frame = frame.with_columns(retyped)
    return frame


def read_feature_file(
    path: str | Path,
    id_column: str,
    kinds: Mapping[str, str] | None = None,
    separator: str = " ",
) -> pl.DataFrame:
    """A feature file as ``id`` (Utf8) + typed features.

    RecBole atomic files (``.item``, ``.user``) carry their types in the header; CSV / TSV columns
    are text (token) unless ``kinds`` says otherwise; Parquet columns keep their types (numbers are
    float, strings token, lists token_seq / float_seq). ``kinds`` overrides any of these; list
    kinds given as text are split on ``separator``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such feature file: {path}")
    suffix = path.suffix.lower()
    if suffix in ATOMIC_SUFFIXES:
        frame = read_atomic_features(path, id_column)
    elif suffix in TABLE_SUFFIXES:
        frame = _read_side_table(path, TABLE_SUFFIXES[suffix], id_column)
    else:
        known = ", ".join((*ATOMIC_SUFFIXES, *TABLE_SUFFIXES))
        raise DataError.at(path, None, f"unknown feature file type {suffix!r}; expected {known}")
    first_line = 2 if suffix in (".csv", ".tsv") else None  # after the header line
    return retype(frame, kinds or {}, separator, path, first_line)


def _read_side_table(path: Path, fmt: str, id_column: str) -> pl.DataFrame:
    try:
        if fmt == "parquet":
            frame = pl.read_parquet(path)
        else:
            frame = pl.read_csv(
                path, separator="," if fmt == "csv" else "\t", infer_schema=False,
                quote_char='"' if fmt == "csv" else None,
            )  # fmt: skip
    except pl.exceptions.PolarsError as error:
        raise DataError.at(path, None, f"cannot be read as {fmt}: {error}") from error
    if id_column not in frame.columns:
        fields = ", ".join(frame.columns)
        raise DataError.at(path, "header", f"no id column '{id_column}' (columns: {fields})")
    frame = frame.rename({id_column: "id"}).with_columns(pl.col("id").cast(pl.Utf8))
    first_line = None if fmt == "parquet" else 2
    if frame["id"].null_count():
        row = int(frame["id"].is_null().arg_true()[0])
        raise DataError.at(path, _place(row, first_line), f"empty id field '{id_column}'")
    repeated = ~frame["id"].is_first_distinct()
    if repeated.any():
        row = int(repeated.arg_true()[0])
        where = _place(row, first_line)
        raise DataError.at(path, where, f"id {frame['id'][row]!r} appears more than once")
    return frame.select("id", *[c for c in frame.columns if c != "id"])


def features_from_columns(
    frame: pl.DataFrame, key: str, fields: Sequence[str]
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Per ``key`` (``item`` or ``user``) the values of ``fields`` at its first row of ``frame``,
    and a note per field whose value differs between rows of one id."""
    rows = frame.select(pl.col(key).alias("id"), *fields)
    first = rows.unique("id", keep="first", maintain_order=True)
    notes = []
    for name in fields:
        varying = rows.group_by("id").agg(pl.col(name).n_unique()).filter(pl.col(name) > 1)
        if varying.height:
            notes.append(
                f"{name}: {varying.height:,} ids have more than one value; the first is kept"
            )
    return first, tuple(notes)
