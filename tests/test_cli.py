"""The command line: baseline evaluation, data statistics, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from seqrec.cli import main

ML100K = Path("/work/shared/data/ml-100k/ml-100k.inter")


@pytest.fixture
def interactions(tmp_path: Path) -> Path:
    """20 users x 8 interactions over 30 items; item i7 is by far the most popular."""
    rows = ["user_id,item_id,timestamp"]
    for u in range(20):
        items = [7, (u + 1) % 30, (u + 2) % 30, 7 if u % 2 else 9, (u + 3) % 30,
                 (u + 4) % 30, (u + 5) % 30, (u + 6) % 30]  # fmt: skip
        rows += [f"u{u},i{item},{t}" for t, item in enumerate(items)]
    path = tmp_path / "tiny.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_pop_evaluation_prints_the_table_and_writes_files(interactions, tmp_path, capsys):
    out = tmp_path / "pop"
    code = main(["evaluate", "--model", "pop", "--dataset", str(interactions),
                 "--protocol", "full", "uniform10", "--output", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "protocol: full, users: 20" in printed and "| NDCG@10 |" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"full", "uniform10"}
    per_user = pl.read_parquet(out / "per_user" / "full.parquet")
    assert per_user.height == 20 and per_user["user"][0] == "u0"
    assert per_user["HR@10"].mean() == pytest.approx(metrics["full"]["metrics"]["HR@10"]["mean"])


def test_data_stats_of_a_file(interactions, capsys):
    assert main(["data", "stats", str(interactions)]) == 0
    printed = capsys.readouterr().out
    lines = dict(line.rsplit(None, 1) for line in printed.strip().splitlines()[1:])
    assert lines["users"] == "20" and lines["interactions"] == "160"
    assert lines["length mean"] == "8.00"


@pytest.mark.skipif(not ML100K.is_file(), reason="shared ml-100k not present")
def test_data_stats_lists_the_feature_fields(capsys):
    assert main(["data", "stats", str(ML100K)]) == 0
    printed = capsys.readouterr().out
    items = printed[printed.index("item features") : printed.index("user features")]
    assert "field         kind       width  tokens  missing  unknown" in items
    assert "class         token_seq  6      19      0        0" in items
    assert "release_year  token      1" in items
    assert "0 items of the corpus have no feature row" in items
    assert "occupation  token  1      21" in printed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "missing.yaml"], "no such config file: missing.yaml"),
        (["evaluate", "--model", "pop"], "--model needs --dataset"),
        (["evaluate", "--model", "pop", "--dataset", "nowhere.csv"], "'nowhere.csv' is neither"),
        (["evaluate", "no-such-run"], "no-such-run: no such run folder"),
        (["train"], "give a CONFIG.yaml to train, or --resume RUN"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("seqrec: error: ") and message in err


def test_unknown_protocol_is_a_clear_error(interactions, capsys):
    argv = ["evaluate", "--model", "pop", "--dataset", str(interactions), "--protocol", "top10"]
    assert main(argv) == 2
    assert "unknown protocol 'top10'" in capsys.readouterr().err


def test_bad_config_key_names_the_file_and_key(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("data: {dataset: x.csv}\nmodel: {name: pop}\ntraining: {epochz: 1}\n")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "'training.epochz'" in err


@pytest.mark.skipif(not ML100K.is_file(), reason="real ml-100k not available")
def test_pop_on_real_ml100k(tmp_path, capsys):
    code = main(["evaluate", "--model", "pop", "--dataset", str(ML100K),
                 "--protocol", "full", "popular100", "--output", str(tmp_path)])  # fmt: skip
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    full = metrics["full"]["metrics"]["NDCG@10"]
    assert metrics["full"]["n_users"] == 943
    # popularity is a weak floor on leave-one-out ml-100k: NDCG@10 about 0.04 (history removed)
    assert 0.03 < full["mean"] < 0.06
    assert full["ci_low"] < full["mean"] < full["ci_high"]
    sampled = metrics["popular100"]["metrics"]["NDCG@10"]["mean"]
    assert 0.05 < sampled < 0.10


BEAUTY = Path("/work/shared/data/beauty/beauty.txt")


@pytest.mark.skipif(not BEAUTY.is_file(), reason="real beauty.txt not available")
def test_data_fetch_installs_a_local_copy_into_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEQREC_HOME", str(tmp_path))
    assert main(["data", "fetch", "beauty", "--source", str(BEAUTY)]) == 0
    cached = Path(capsys.readouterr().out.strip())
    assert cached == tmp_path / "datasets" / "beauty" / "beauty.txt"
    assert cached.stat().st_size == BEAUTY.stat().st_size


def test_data_fetch_of_an_unknown_name_is_an_error(capsys):
    assert main(["data", "fetch", "movielens-1b"]) == 2
    assert "unknown data set 'movielens-1b'" in capsys.readouterr().err
