"""Regression floors: every registered model, trained for seconds on a slice of real ml-100k, must
score at least the floor recorded in benchmarks/floors.yaml (re-record with
benchmarks/record_floors.py). A change that halves a model's recall cannot pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqrec import models
from seqrec.benchmark.floors import load_floors
from seqrec.pipeline import train

ROOT = Path(__file__).resolve().parents[1]
FLOORS = load_floors(ROOT / "benchmarks" / "floors.yaml")
INTER = ROOT.parent / "shared" / "data" / "ml-100k" / "ml-100k.inter"
RECORD = "OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/record_floors.py"
needs_data = pytest.mark.skipif(not INTER.exists(), reason="shared ml-100k data not present")


@needs_data
@pytest.mark.parametrize("name", [e.name for e in FLOORS.entries])
def test_each_model_scores_at_least_its_floor(name, tmp_path):
    entry = FLOORS.entry(name)
    run = train(FLOORS.config(entry, INTER, tmp_path / name, FLOORS.seed))
    result = run.results[FLOORS.protocol_of(entry)]
    below = {
        metric: f"{result[metric]:.4f} < floor {floor} (recorded {entry.measured[metric]})"
        for metric, floor in entry.floor.items()
        if result[metric] < floor
    }
    assert not below, f"{name} fell below its floor: {below}"


def test_every_registered_model_has_a_floor():
    covered = {e.model["name"] for e in FLOORS.entries}
    missing = sorted(set(models.MODELS) - covered)
    assert not missing, (
        f"registered models without a floor: {', '.join(missing)}; add an entry to "
        f"benchmarks/floors.yaml and run {RECORD} --models NAME"
    )


def test_every_floor_is_recorded_and_would_catch_a_halved_metric():
    metrics = FLOORS.slice["evaluation"]["metrics"]
    for e in FLOORS.entries:
        assert sorted(e.floor) == sorted(metrics), f"{e.name}: no floor recorded; run {RECORD}"
        for metric in metrics:
            assert e.measured[metric] / 2 < e.floor[metric] < e.measured[metric], (e.name, metric)
