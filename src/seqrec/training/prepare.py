"""From the ``data`` section of a config to an encoded corpus and its split (deterministic).

Runs rebuild their data from the saved config, so ``evaluate`` and ``resume`` see exactly the
users, items and targets the run was trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from seqrec.config import ConfigError, DataConfig, FeatureConfig, SplitConfig
from seqrec.data import datasets
from seqrec.data.corpus import SequenceCorpus, Vocabulary, build_corpus
from seqrec.data.errors import SeqrecError
from seqrec.data.features import (
    FeatureTable,
    build_feature_table,
    features_from_columns,
    read_feature_file,
    retype,
)
from seqrec.data.labels import with_click_labels
from seqrec.data.readers import read_interactions
from seqrec.data.splits import (
    Split,
    labelled_split,
    leave_one_out,
    ratio_split,
    temporal_split,
    time_quantile,
    train_on_validation,
)
from seqrec.data.streaming import Preprocessing, build_corpus_streaming


@dataclass(frozen=True)
class PreparedData:
    corpus: SequenceCorpus
    split: Split
    n_rows: int  # interactions read, before any filter
    item_features: FeatureTable | None = None  # aligned with corpus.items (row 0 = padding)
    user_features: FeatureTable | None = None  # aligned with corpus.users


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


def make_split(corpus: SequenceCorpus, frame: pl.DataFrame | None, cfg: SplitConfig) -> Split:
    split = _held_out(corpus, frame, cfg)
    return train_on_validation(split) if cfg.train_on_validation else split


def _held_out(corpus: SequenceCorpus, frame: pl.DataFrame | None, cfg: SplitConfig) -> Split:
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
    if cfg.kind == "ratio":
        return ratio_split(corpus, cfg.ratios)
    if cfg.column not in frame.columns:
        raise ConfigError(
            f"data.split.column: the data has no column {cfg.column!r} "
            f"(columns: {', '.join(frame.columns)})"
        )
    labels = frame[cfg.column].cast(pl.Utf8).to_numpy()[corpus.source_rows]
    return labelled_split(corpus, labels)


def _feature_file(data: DataConfig, which: str) -> tuple[Path, str] | None:
    """The data's own feature file and id field (see ``FeatureConfig``), or None."""
    if data.dataset in datasets.available():
        entry = getattr(datasets.info(data.dataset), f"{which}_features")
        if entry is None:
            return None
        return datasets.fetch(data.dataset) / entry[0], entry[1]
    path = Path(data.dataset).expanduser()
    beside = path.with_suffix(f".{which}")
    if path.suffix.lower() == ".inter" and beside.is_file():
        return beside, f"{which}_id"
    return None


def _feature_frame(
    data: DataConfig, which: str, frame: pl.DataFrame | None
) -> tuple[pl.DataFrame, tuple[str, ...]] | None:
    """Features (``id`` + columns) as configured in ``data.<which>_features`` and source notes."""
    cfg: FeatureConfig = getattr(data, f"{which}_features")
    key = f"data.{which}_features"
    own = (Path(cfg.path).expanduser(), f"{which}_id") if cfg.path else _feature_file(data, which)
    if own is not None:
        source = own[0]
        features = read_feature_file(source, cfg.id_column or own[1], cfg.kinds, cfg.separator)
    elif cfg.fields and data.dataset in datasets.available():
        raise ConfigError(f"{key}.fields: {data.dataset} has no {which} features; give {key}.path")
    elif cfg.fields:  # extra columns of the interaction file
        _check_fields(cfg.fields, [c for c in frame.columns if c not in ("user", "item")], key)
        features, notes = features_from_columns(frame, which, cfg.fields)
        notes = (f"from the interaction file's columns {', '.join(cfg.fields)}", *notes)
        return retype(features, cfg.kinds, cfg.separator, data.dataset), notes
    else:
        return None
    if cfg.fields is not None:
        _check_fields(cfg.fields, [c for c in features.columns if c != "id"], key)
        features = features.select("id", *cfg.fields)
    return features, (f"from {source}",)


def _check_fields(fields: tuple[str, ...], available: list[str], key: str) -> None:
    missing = [f for f in fields if f not in available]
    if missing:
        raise ConfigError(
            f"{key}.fields: no field {missing[0]!r} in the data (fields: {', '.join(available)})"
        )


def load_features(
    data: DataConfig, which: str, frame: pl.DataFrame | None, vocabulary: Vocabulary
) -> FeatureTable | None:
    """The ``item`` or ``user`` feature table aligned with ``vocabulary``, or None if the data
    has no such features."""
    found = _feature_frame(data, which, frame)
    if found is None:
        return None
    cfg: FeatureConfig = getattr(data, f"{which}_features")
    features, notes = found
    return build_feature_table(
        features, vocabulary, max_tokens=cfg.max_tokens, min_count=cfg.min_count, notes=notes
    )


def _preprocessing(data: DataConfig) -> Preprocessing:
    return Preprocessing(
        min_rating=data.min_rating,
        min_user_interactions=data.min_user_interactions,
        min_item_interactions=data.min_item_interactions,
        max_len=data.max_len,
        duplicates=data.duplicates,
    )


def streamed_corpus(data: DataConfig) -> SequenceCorpus:
    """The corpus of ``data.streaming``: a Parquet file or folder, through the on-disk cache."""
    if data.dataset in datasets.available():
        raise ConfigError(
            f"data.streaming: reads Parquet files; {data.dataset!r} is a named data set"
        )
    path = Path(data.dataset).expanduser()
    if path.is_file() and path.suffix.lower() != ".parquet" and data.format != "parquet":
        raise ConfigError(f"data.streaming: reads Parquet files, not {path.name}")
    if not path.exists():
        raise ConfigError(f"data.dataset: {data.dataset!r}: no such Parquet file or folder")
    cache = Path(data.cache_dir) if data.cache_dir else datasets.cache_home() / "corpora"
    return build_corpus_streaming(path, cache, data.columns.mapping(), _preprocessing(data))


def prepare_data(data: DataConfig) -> PreparedData:
    """Read, filter (rating, k-core, newest ``max_len``), encode, label and split; load side
    features.

    With ``data.streaming`` the corpus comes from the streaming path and no frame is held
    (``make_split`` and the features then never need one: ``DataConfig`` checks that).
    """
    if data.streaming:
        corpus, frame = streamed_corpus(data), None
    else:
        frame = read_frame(data)
        corpus = build_corpus(frame, **asdict(_preprocessing(data)))
        if data.click_labels.column is not None:
            corpus = with_click_labels(corpus, frame, data.click_labels, data.dataset)
    try:
        split = make_split(corpus, frame, data.split)
    except ValueError as error:  # the split's own checks: labels, cut-offs against the data
        if isinstance(error, SeqrecError):
            raise
        raise ConfigError(f"data.split: {error}") from error
    return PreparedData(
        corpus,
        split,
        corpus.rows_read,
        item_features=load_features(data, "item", frame, corpus.items),
        user_features=load_features(data, "user", frame, corpus.users),
    )
