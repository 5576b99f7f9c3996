"""The synthetic generator: sizes, determinism, the power law and learnable drifting interests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from seqrec.cli import main
from seqrec.data.synth import BLOCK_USERS, SynthSpec, catalogue, write_synthetic
from seqrec.errors import ArgumentError


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _frame(spec: SynthSpec, path: Path, chunk_users: int = 100_000) -> pl.DataFrame:
    write_synthetic(spec, path, chunk_users=chunk_users)
    return pl.read_parquet(path)


def _same_cluster_share(spec: SynthSpec, frame: pl.DataFrame) -> float:
    """Share of consecutive interactions (within a user) whose items share a cluster."""
    clusters = catalogue(spec).cluster_of(frame["item_id"].to_numpy())
    users = frame["user_id"].to_numpy()
    same_user = users[1:] == users[:-1]
    return float((clusters[1:] == clusters[:-1])[same_user].mean())


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    spec = SynthSpec(users=2_500, items=300, drift=0.5, seed=7)
    write_synthetic(spec, tmp_path / "a.parquet")
    write_synthetic(spec, tmp_path / "b.parquet")
    write_synthetic(SynthSpec(users=2_500, items=300, drift=0.5, seed=8), tmp_path / "c.parquet")
    assert _sha(tmp_path / "a.parquet") == _sha(tmp_path / "b.parquet")
    assert _sha(tmp_path / "a.parquet") != _sha(tmp_path / "c.parquet")


def test_rows_do_not_depend_on_chunking_or_on_file_versus_parts(tmp_path):
    spec = SynthSpec(users=2 * BLOCK_USERS + 17, items=200, interactions_per_user=4, seed=1)
    one = _frame(spec, tmp_path / "one.parquet", chunk_users=10**6)
    parts = tmp_path / "parts"
    write_synthetic(spec, parts, chunk_users=BLOCK_USERS)
    files = sorted(parts.glob("*.parquet"))
    assert [f.name for f in files] == [f"part-{i:05d}.parquet" for i in range(3)]
    assert pl.read_parquet(files).equals(one)
    assert pq.ParquetFile(tmp_path / "one.parquet").num_row_groups == 1


def test_sizes_lengths_and_time_order(tmp_path):
    spec = SynthSpec(users=5_000, items=400, interactions_per_user=12, min_length=4, seed=2)
    frame = _frame(spec, tmp_path / "s.parquet")
    lengths = frame.group_by("user_id").len()["len"].to_numpy()
    assert frame["user_id"].n_unique() == 5_000 and frame["user_id"].max() == 5_000
    assert lengths.min() >= 4
    assert abs(lengths.mean() - 12) < 0.3  # geometric lengths: mean 12 (sd ~8.5, 5,000 users)
    assert frame["item_id"].min() >= 1 and frame["item_id"].max() <= 400
    # each user's rows are in time order (ties allowed)
    steps = frame.select(pl.col("timestamp").diff().over("user_id")).to_series().drop_nulls()
    assert steps.min() == 0 and (steps >= 0).all()


@pytest.mark.parametrize(("alpha", "drift"), [(0.8, 0.0), (1.2, 0.0), (1.0, 0.7)])
def test_item_popularity_follows_the_power_law(tmp_path, alpha, drift):
    spec = SynthSpec(users=10_000, items=2_000, alpha=alpha, drift=drift, clusters=40, seed=3)
    frame = _frame(spec, tmp_path / "p.parquet")
    counts = np.sort(frame["item_id"].value_counts()["count"].to_numpy())[::-1]
    ranks = np.arange(1, 201)  # the head, where every count is in the hundreds or more
    slope = np.polyfit(np.log(ranks), np.log(counts[:200]), 1)[0]
    assert slope == pytest.approx(-alpha, abs=0.08)


def test_drifting_interests_make_the_next_item_predictable(tmp_path):
    base = {"users": 5_000, "items": 1_000, "clusters": 25, "seed": 4}
    drifting = SynthSpec(**base, drift=0.8, switch=0.05)
    chance = float((catalogue(drifting).cluster_mass ** 2).sum())
    share = _same_cluster_share(drifting, _frame(drifting, tmp_path / "d.parquet"))
    plain = SynthSpec(**base, drift=0.0)
    plain_share = _same_cluster_share(plain, _frame(plain, tmp_path / "n.parquet"))
    assert plain_share == pytest.approx(chance, abs=0.01)  # no drift: clusters are noise
    assert share > 10 * chance and share > 0.6


def test_catalogue_puts_every_item_in_one_cluster_with_the_power_law_mass():
    spec = SynthSpec(users=1, items=500, clusters=30, alpha=1.1, seed=5)
    cat = catalogue(spec)
    assert sorted(cat.ids.tolist()) == list(range(1, 501))
    assert np.bincount(cat.cluster, minlength=30).min() >= 1
    assert cat.probability.sum() == pytest.approx(1.0)
    expected = np.arange(1, 501) ** -1.1 / (np.arange(1, 501) ** -1.1).sum()
    assert np.sort(cat.probability)[::-1] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"users": 0}, "--users: expected at least 1, got 0"),
        ({"drift": 1.5}, "--drift: expected between 0 and 1, got 1.5"),
        ({"interactions_per_user": 2.0}, "--interactions-per-user: expected at least min_length"),
        ({"clusters": 50}, "--clusters: expected between 1 and items (10)"),
    ],
)
def test_bad_sizes_are_named(changes, message):
    with pytest.raises(ArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SynthSpec(**{"users": 5, "items": 10, "clusters": 5, **changes})


def test_cli_writes_the_file_and_rejects_bad_flags_in_one_line(tmp_path, capsys):
    out = tmp_path / "cli.parquet"
    argv = ["data", "synth", "--users", "300", "--items", "50", "--drift", "0.5"]
    assert main([*argv, "--seed", "9", "--output", str(out)]) == 0
    frame = pl.read_parquet(out)
    assert frame.columns == ["user_id", "item_id", "timestamp"]
    assert f"{frame.height:,} interactions of 300 users -> {out}" in capsys.readouterr().out
    assert main([*argv[:-1], "1.5", "--output", str(tmp_path / "bad.parquet")]) == 2
    err = capsys.readouterr().err
    assert err == "seqrec: error: --drift: expected between 0 and 1, got 1.5\n"
    assert not (tmp_path / "bad.parquet").exists()
