"""``train(..., on_validation=...)``: every validation value reaches the caller, and what the
caller raises stops training (how a tuning trial is pruned)."""

from __future__ import annotations

import polars as pl
import pytest
from tiny_run import tiny_config

from seqrec.config import ConfigError
from seqrec.pipeline import train


class StopError(Exception):
    pass


def test_each_validation_value_is_reported_with_its_epoch(tiny_data, tmp_path):
    seen: list[tuple[int, float]] = []
    run = train(tiny_config(tiny_data, tmp_path / "run", epochs=5, eval_every=2),
                on_validation=lambda epoch, value: seen.append((epoch, value)))  # fmt: skip
    history = pl.read_csv(run.dir / "history.csv").drop_nulls("valid_NDCG@10")
    assert seen == list(zip(history["epoch"], history["valid_NDCG@10"], strict=True))
    assert [epoch for epoch, _ in seen] == [2, 4, 5]  # every 2nd epoch and the last


def test_an_exception_from_the_listener_stops_training_before_the_test(tiny_data, tmp_path):
    seen: list[int] = []

    def prune_at_two(epoch: int, value: float) -> None:
        seen.append(epoch)
        if epoch == 2:
            raise StopError(f"pruned at {epoch}")

    with pytest.raises(StopError, match="pruned at 2"):
        train(tiny_config(tiny_data, tmp_path / "run", epochs=5), on_validation=prune_at_two)
    assert seen == [1, 2]
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_listener_follows_one_training_not_several_seeds(tiny_data, tmp_path):
    with pytest.raises(ConfigError, match="on_validation follows one training"):
        train(tiny_config(tiny_data, tmp_path / "run", seeds=[1, 2]), on_validation=print)
    assert not (tmp_path / "run").exists()
