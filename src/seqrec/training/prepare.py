"""From the ``data`` section of a config to an encoded corpus and its split (deterministic).

Runs rebuild their data from the saved config, so ``evaluate`` and ``resume`` see exactly the
users, items and targets the run was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from seqrec.config import ConfigError, DataConfig, SplitConfig
from seqrec.data import datasets
from seqrec.data.corpus import SequenceCorpus, build_corpus
from seqrec.data.errors import SeqrecError
from seqrec.data.readers import read_interactions
from seqrec.data.splits import (
    Split,
    labelled_split,
    leave_one_out,
    temporal_split,
    time_quantile,
    train_on_validation,
)


@dataclass(frozen=True)
class PreparedData:
    corpus: SequenceCorpus
    split: Split
    n_rows: int  # interactions read, before any filter


def read_frame(data: DataConfig) -> pl.DataFrame:
    """The canonical interaction frame of a named data set or of a file."""
    if data.dataset in datasets.available():
        if data.format is not None or data.columns.mapping():
            raise ConfigError(
                f"data.format and data.columns apply to files; {data.dataset!r} is a named data set"
            )
        return datasets.load_interactions(data.dataset)
    path = Path(data.dataset).expanduser()
    if not path.is_file():
        known = ", ".join(datasets.available())
        raise ConfigError(
            f"data.dataset: {data.dataset!r} is neither a known data set ({known}) nor a file"
        )
    return read_interactions(path, data.format, data.columns.mapping() or None)


def make_split(corpus: SequenceCorpus, frame: pl.DataFrame, cfg: SplitConfig) -> Split:
    split = _held_out(corpus, frame, cfg)
    return train_on_validation(split) if cfg.train_on_validation else split


def _held_out(corpus: SequenceCorpus, frame: pl.DataFrame, cfg: SplitConfig) -> Split:
    if cfg.kind == "leave_one_out":
        return leave_one_out(corpus)
    if cfg.kind == "temporal":
        test = (
            cfg.test_time if cfg.test_time is not None else time_quantile(corpus, cfg.test_quantile)
        )
        valid = cfg.valid_time
        if cfg.valid_quantile is not None:
            valid = time_quantile(corpus, cfg.valid_quantile)
        return temporal_split(corpus, test, valid, cfg.targets)
    if cfg.column not in frame.columns:
        raise ConfigError(
            f"data.split.column: the data has no column {cfg.column!r} "
            f"(columns: {', '.join(frame.columns)})"
        )
    labels = frame[cfg.column].cast(pl.Utf8).to_numpy()[corpus.source_rows]
    return labelled_split(corpus, labels)


def prepare_data(data: DataConfig) -> PreparedData:
    """Read, filter (rating, k-core, newest ``max_len``), encode and split."""
    frame = read_frame(data)
    corpus = build_corpus(
        frame,
        min_rating=data.min_rating,
        min_user_interactions=data.min_user_interactions,
        min_item_interactions=data.min_item_interactions,
        max_len=data.max_len,
        duplicates=data.duplicates,
    )
    try:
        split = make_split(corpus, frame, data.split)
    except ValueError as error:  # the split's own checks: labels, cut-offs against the data
        if isinstance(error, SeqrecError):
            raise
        raise ConfigError(f"data.split: {error}") from error
    return PreparedData(corpus, split, frame.height)
