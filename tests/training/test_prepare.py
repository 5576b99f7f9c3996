"""From the data section of a config to a corpus and split."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqrec.config import Columns, ConfigError, DataConfig, SplitConfig
from seqrec.evaluation.protocols import FullRanking, SampledRanking
from seqrec.pipeline import protocol_of
from seqrec.training.prepare import prepare_data


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """Two users; a 'part' column says which interactions are for validation and test."""
    rows = ["uid,iid,ts,part"]
    for user in ("a", "b"):
        parts = ["train", "train", "train", "valid", "test"]
        rows += [f"{user},{user}{t},{t},{part}" for t, part in enumerate(parts)]
    path = tmp_path / "labelled.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_file_split_follows_the_label_column(labelled):
    data = DataConfig(
        dataset=str(labelled),
        columns=Columns(user="uid", item="iid", timestamp="ts"),
        split=SplitConfig(kind="file", column="part"),
    )
    prepared = prepare_data(data)
    items = prepared.corpus.items
    split = prepared.split
    assert items.decode(split.train.items).tolist() == ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert items.decode(split.valid.targets.items).tolist() == ["a3", "b3"]
    assert items.decode(split.test.targets.items).tolist() == ["a4", "b4"]
    assert split.test.context.lengths.tolist() == [4, 4]  # train + validation


def test_a_missing_label_column_is_named(labelled):
    data = DataConfig(
        dataset=str(labelled),
        columns=Columns(user="uid", item="iid", timestamp="ts"),
        split=SplitConfig(kind="file", column="fold"),
    )
    with pytest.raises(ConfigError, match="no column 'fold'"):
        prepare_data(data)


def test_temporal_split_by_quantile(labelled):
    data = DataConfig(
        dataset=str(labelled),
        columns=Columns(user="uid", item="iid", timestamp="ts"),
        split=SplitConfig(kind="temporal", test_quantile=0.8),
    )
    split = prepare_data(data).split
    assert len(split.test) == 2
    assert split.train.lengths.tolist() == [4, 4]  # times 0..3 are below the 0.8 quantile, 3.2


def test_unknown_dataset_and_columns_for_a_named_set_are_config_errors():
    with pytest.raises(ConfigError, match="neither a known data set"):
        prepare_data(DataConfig(dataset="no/such/file.csv"))
    with pytest.raises(ConfigError, match="apply to files"):
        prepare_data(DataConfig(dataset="ml-100k", columns=Columns(user="uid")))


def test_exclude_history_false_keeps_history_in_full_ranking():
    assert protocol_of("full", exclude_history=False) == FullRanking(exclude_history=False)
    assert protocol_of("full") == FullRanking(exclude_history=True)
    assert isinstance(protocol_of("popular100", exclude_history=False), SampledRanking)
