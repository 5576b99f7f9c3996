"""Item and user feature tables aligned with the corpus' codes.

Given a ``Vocabulary`` and a feature frame with an ``id`` column (``read_atomic_features``), every
feature becomes a numpy array indexed by code, so a model gathers features of a batch of codes with
one indexing operation. Token values get their own vocabulary per feature (code 0 = missing or
padding, real tokens 1..n). For items, row 0 (the padding item) holds no features.

Ids of the feature file that the corpus does not know are ignored, and corpus ids without a feature
row get "missing" everywhere; both are counted in the table so that nothing goes unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from seqrec.data.corpus import Vocabulary

KINDS = ("token", "token_seq", "float", "float_seq")


@dataclass(frozen=True)
class FeatureTable:
    """Per-feature arrays, row ``c`` for code ``c``.

    - token: (n_codes,) int64, a code in ``vocabularies[name]``, 0 = missing.
    - token_seq: (n_codes, max_tokens) int64, tokens left-aligned, 0 = padding / missing.
    - float: (n_codes,) float64, NaN = missing.
    - float_seq: (n_codes, max_len) float64, left-aligned, NaN = padding / missing.
    """

    arrays: dict[str, np.ndarray]
    kinds: dict[str, str]  # feature name -> one of KINDS
    vocabularies: dict[str, Vocabulary]  # token and token_seq features; offset 1
    unknown_ids: tuple[str, ...]  # ids in the feature frame but not in the corpus (ignored)
    ids_without_features: tuple[str, ...]  # corpus ids with no feature row

    @property
    def n_codes(self) -> int:
        return len(next(iter(self.arrays.values()))) if self.arrays else 0

    def describe(self) -> str:
        """One line per fact a user should know before training on these features."""

        def some(ids: tuple[str, ...]) -> str:
            return f" (e.g. {', '.join(ids[:5])})" if ids else ""

        lines = [f"{name}: {kind} {self.arrays[name].shape}" for name, kind in self.kinds.items()]
        lines.append(
            f"{len(self.unknown_ids):,} ids in the features are not in the corpus"
            + some(self.unknown_ids)
        )
        lines.append(
            f"{len(self.ids_without_features):,} corpus ids have no features"
            + some(self.ids_without_features)
        )
        return "\n".join(lines)


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


def _token_codes(values: pl.Series) -> tuple[Vocabulary, pl.Series]:
    """Token vocabulary in order of first appearance, and each value's code (null -> 0)."""
    tokens = values.drop_nulls().unique(maintain_order=True)
    codes = values.replace_strict(
        tokens, pl.int_range(1, len(tokens) + 1, eager=True), default=0, return_dtype=pl.Int64
    )
    return Vocabulary(tokens.to_numpy().astype(str), offset=1), codes


def _exploded(known: pl.DataFrame, name: str, max_len: int | None) -> tuple[pl.DataFrame, int]:
    """(code, position, value) for every list element; the width is the longest list or max_len."""
    rows = known.select("_code", pl.col(name).alias("value")).with_row_index("_r").explode("value")
    rows = rows.with_columns(pl.int_range(pl.len()).over("_r").alias("_pos")).drop_nulls("value")
    width = int(rows["_pos"].max() or 0) + 1 if rows.height else 1
    width = width if max_len is None else max_len
    return rows.filter(pl.col("_pos") < width), width


def _column(
    known: pl.DataFrame, name: str, kind: str, n_codes: int, max_len: int | None
) -> tuple[np.ndarray, Vocabulary | None]:
    """The array of one feature (and its token vocabulary) from rows with a known code."""
    if kind in ("token", "float"):
        codes = known["_code"].to_numpy()
        if kind == "float":
            out = np.full(n_codes, np.nan)
            out[codes] = known[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
            return out, None
        vocab, tokens = _token_codes(known[name])
        out = np.zeros(n_codes, dtype=np.int64)
        out[codes] = tokens.to_numpy()
        return out, vocab
    rows, width = _exploded(known, name, max_len)
    code, pos = rows["_code"].to_numpy(), rows["_pos"].to_numpy()
    if kind == "float_seq":
        out = np.full((n_codes, width), np.nan)  # (n_codes, width)
        out[code, pos] = rows["value"].cast(pl.Float64).to_numpy()
        return out, None
    vocab, tokens = _token_codes(rows["value"])
    out = np.zeros((n_codes, width), dtype=np.int64)  # (n_codes, width)
    out[code, pos] = tokens.to_numpy()
    return out, vocab


def build_feature_table(
    frame: pl.DataFrame, vocabulary: Vocabulary, *, max_tokens: int | None = None
) -> FeatureTable:
    """Arrays of every feature in ``frame`` (an ``id`` column plus features) indexed by code.

    ``max_tokens`` caps the width of token_seq / float_seq features (the first tokens are kept);
    by default the width is the longest list among the corpus' ids.
    """
    if "id" not in frame.columns:
        raise ValueError(f"the feature frame needs an 'id' column; it has {frame.columns}")
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
    arrays, vocabularies = {}, {}
    for name, kind in kinds.items():
        arrays[name], vocab = _column(known, name, kind, n_codes, max_tokens)
        if vocab is not None:
            vocabularies[name] = vocab
    return FeatureTable(
        arrays=arrays,
        kinds=kinds,
        vocabularies=vocabularies,
        unknown_ids=tuple(joined.filter(pl.col("_code").is_null())["id"].to_list()),
        ids_without_features=tuple(ids.join(frame, on="id", how="anti")["id"].to_list()),
    )
