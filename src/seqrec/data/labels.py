"""Click labels from a column of the interaction data (``data.click_labels``).

A label says whether a shown item was clicked (1) or not (0): from a numeric column and a
threshold (``rating >= 4``, RecBole's ``threshold``) or from a column that holds 0 and 1
already. The labels join the corpus aligned with its interactions (``Sequences.labels``), so
filters, the split and the training windows carry them without knowing about them.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from seqrec.config import ClickLabelsConfig
from seqrec.data.corpus import SequenceCorpus
from seqrec.errors import ConfigError, DataError

KEY = "data.click_labels"


def _numbers(frame: pl.DataFrame, column: str, source: str) -> np.ndarray:
    """The column as float64; a value that is no finite number is an error naming its row."""
    values = frame[column]
    numbers = values.cast(pl.Float64, strict=False)
    bad = numbers.is_null() | ~numbers.is_finite().fill_null(False)
    if bool(bad.any()):
        row = int(bad.arg_true()[0])
        raise DataError(
            f"{source}: data row {row + 1}: {KEY}.column {column!r} holds {values[row]!r}, "
            f"expected a number ({int(bad.sum()):,} such rows)"
        )
    return numbers.to_numpy()


def click_labels(frame: pl.DataFrame, cfg: ClickLabelsConfig, source: str) -> np.ndarray:
    """Each row's label (frame.height,) float32: value >= threshold, or the 0/1 value itself.
    ``source`` (the data's name or path) starts every error message."""
    column = cfg.column
    if column not in frame.columns:
        raise ConfigError(
            f"{KEY}.column: {source} has no column {column!r} (columns: {', '.join(frame.columns)})"
        )
    values = _numbers(frame, column, source)
    if cfg.threshold is not None:
        return (values >= cfg.threshold).astype(np.float32)
    bad = (values != 0) & (values != 1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: data row {row + 1}: {KEY}.column {column!r} holds {values[row]:g}, "
            f"expected 0 or 1 "
            f"({int(bad.sum()):,} such rows; give {KEY}.threshold to label by a threshold)"
        )
    return values.astype(np.float32)


def with_click_labels(
    corpus: SequenceCorpus, frame: pl.DataFrame, cfg: ClickLabelsConfig, source: str
) -> SequenceCorpus:
    """The corpus with the label of every kept interaction; one class only is an error."""
    labels = click_labels(frame, cfg, source)[corpus.source_rows]
    clicked = int(labels.sum())
    if clicked in (0, len(labels)):
        which = "clicked (1)" if clicked else "not clicked (0)"
        raise DataError(
            f"{source}: {KEY}: every one of the {len(labels):,} interactions kept is {which}; "
            "click-through models need both labels"
        )
    return replace(corpus, sequences=replace(corpus.sequences, labels=labels))
