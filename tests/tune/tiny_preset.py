"""A tiny preset and search space for the search tests."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))  # the tiny test model

from tiny_run import tiny_config, write_interactions

SPACE = {
    "training.lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
    "model.hidden_size": {"type": "categorical", "choices": [8, 16]},
}


def write_preset(root: Path, **training: object) -> tuple[Path, Path]:
    """A tiny preset (lr 0.01, hidden 16: inside SPACE) and the space file."""
    config = tiny_config(write_interactions(root / "tiny.tsv"), root / "unused", **{"epochs": 2,
                         **training})  # fmt: skip
    del config["output"]
    config["evaluation"]["bootstrap"] = {"resamples": 50}
    (root / "tiny.yaml").write_text(yaml.safe_dump(config))
    (root / "space.yaml").write_text(yaml.safe_dump(SPACE))
    return root / "tiny.yaml", root / "space.yaml"
