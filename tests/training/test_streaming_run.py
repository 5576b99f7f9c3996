"""``data.streaming``: its config checks, and a run on it equals the same run on the eager path."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from seqrec.cli import main
from seqrec.config import ConfigError, config_from_dict
from seqrec.data.synth import SynthSpec, write_synthetic
from seqrec.pipeline import train
from seqrec.training.prepare import prepare_data

MODEL = {"name": "sasrec", "max_len": 8, "hidden_size": 8, "n_heads": 1, "n_layers": 1,
         "inner_size": 8}  # fmt: skip


def _raw(dataset: str, **data) -> dict:
    return {
        "data": {"dataset": dataset, **data},
        "model": MODEL,
        "training": {"epochs": 1, "batch_size": 32, "progress_bar": False, "seed": 3},
        "evaluation": {"protocols": ["full"], "metrics": ["NDCG@10", "HR@10"]},
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cache_dir": "c"}, "data.cache_dir: applies with data.streaming: true"),
        ({"streaming": "yes"}, "data.streaming: expected bool, got 'yes'"),
        ({"streaming": True, "format": "csv"}, "data.streaming: reads Parquet, not data.format"),
        ({"streaming": True, "split": {"kind": "file"}}, "a split from a file column needs"),
        (
            {"streaming": True, "item_features": {"fields": ["genre"]}},
            "data.item_features: features from the interaction file's columns need",
        ),
    ],
)
def test_config_checks_name_the_key(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict(_raw("x.parquet", **data))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("run") / "synth.parquet"
    write_synthetic(SynthSpec(users=300, items=60, interactions_per_user=10, drift=0.8, clusters=6,
                              seed=5), path)  # fmt: skip
    return path


def test_prepared_data_is_the_eager_one_and_memory_mapped(synthetic, tmp_path):
    eager = prepare_data(config_from_dict(_raw(str(synthetic), min_user_interactions=5)).data)
    raw = _raw(str(synthetic), min_user_interactions=5, streaming=True, cache_dir=str(tmp_path))
    streamed = prepare_data(config_from_dict(raw).data)
    assert isinstance(streamed.corpus.sequences.items, np.memmap)
    assert streamed.n_rows == eager.n_rows
    split, want = streamed.split, eager.split
    np.testing.assert_array_equal(split.train.items, want.train.items)
    for part in ("valid", "test"):
        got, expected = getattr(split, part), getattr(want, part)
        np.testing.assert_array_equal(got.users, expected.users)
        np.testing.assert_array_equal(got.context.items, expected.context.items)
        np.testing.assert_array_equal(got.targets.items, expected.targets.items)


def test_a_run_on_the_streaming_path_equals_the_eager_run(synthetic, tmp_path):
    eager = train(_raw(str(synthetic)), **{"output.dir": str(tmp_path / "eager")})
    streamed = train(
        _raw(str(synthetic), streaming=True, cache_dir=str(tmp_path / "cache")),
        **{"output.dir": str(tmp_path / "streamed")},
    )
    assert streamed.metrics["full"] == eager.metrics["full"]
    assert list((tmp_path / "cache").iterdir())


def test_cli_errors_for_streaming_input_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    csv = tmp_path / "d.csv"
    csv.write_text("user_id,item_id,timestamp\nu,i,1\n")
    for dataset, message in (
        ("ml-100k", "data.streaming: reads Parquet files; 'ml-100k' is a named data set"),
        (str(csv), "data.streaming: reads Parquet files, not d.csv"),
        ("missing.parquet", "data.dataset: 'missing.parquet': no such Parquet file or folder"),
    ):
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(_raw(dataset, streaming=True)))
        assert main(["train", "c.yaml"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("seqrec: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()
