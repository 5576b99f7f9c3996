"""A tiny suite: two variants of the tiny test model and popularity on small synthetic data."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))  # the tiny test model

from tiny_run import write_interactions


def write_suite(root: Path, **changes: object) -> Path:
    """Presets and a suite file in ``root``; ``changes`` replace top-level suite keys."""
    data = write_interactions(root / "tiny.tsv")
    tiny = {
        "data": {"dataset": "unused: the suite's data section replaces it"},
        "model": {"name": "tiny", "max_len": 6},
        "training": {"epochs": 2, "batch_size": 8, "lr": 0.01, "progress_bar": False},
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    pop = {"data": {"dataset": "x"}, "model": {"name": "pop"}}
    (root / "pop.yaml").write_text(yaml.safe_dump(pop))
    suite = {
        "description": "tiny models on synthetic walks",
        "data": {"dataset": str(data)},
        "evaluation": {"protocols": ["full", "uniform10"], "metrics": ["NDCG@10", "HR@10"]},
        "seeds": [1, 2],
        "metric": "NDCG@10",
        "quick": {"training.epochs": 1},
        "models": [
            {"name": "pop", "config": str(root / "pop.yaml")},
            {"name": "tiny-a", "config": str(root / "tiny.yaml")},
            {"name": "tiny-b", "config": str(root / "tiny.yaml"),
             "overrides": {"training.lr": 0.001, "model.hidden_size": 8,
                           "training.dupe_factor": 2}},
        ],
    } | changes  # fmt: skip
    path = root / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path
