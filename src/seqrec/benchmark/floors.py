"""Regression floors: every registered model, trained for seconds on a slice of real data, must
score at least the floor recorded for it, so that no change silently halves a model's recall.

``benchmarks/floors.yaml`` holds the slice (shared data, training and evaluation settings), one
entry per model variant (its model section and training overrides) and, per metric, the value
measured with the test seed and the floor. ``tests/test_regression_floors.py`` trains each entry
with that seed and compares; ``benchmarks/record_floors.py`` measures again and rewrites the file.

The floor is the measured value minus a margin of ``max(CI half-width, 3 x seed std)``: the 95%
user-bootstrap half-width says how far chance in which users are tested moves a value, the
standard deviation over three training seeds how far a harmless change (one that acts like
another seed: an operation reordered, a library update) moves it. Float noise between runs is
orders of magnitude smaller; a halved metric falls far below.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqrec.config import ConfigError, read_yaml

FLOORS_FILE = Path("benchmarks") / "floors.yaml"
TOP_KEYS = ("slice", "seed", "protocol", "models")
ENTRY_KEYS = ("model", "training", "protocol", "measured", "margin", "floor", "recorded")


@dataclass(frozen=True)
class FloorEntry:
    """One model variant: its model section, training overrides and recorded figures."""

    name: str
    model: dict[str, Any]
    training: dict[str, Any]
    measured: dict[str, float]
    margin: dict[str, float]
    floor: dict[str, float]
    recorded: str = ""  # the date the figures were measured
    protocol: str | None = None  # the file's protocol unless the entry sets its own


@dataclass(frozen=True)
class Floors:
    path: Path
    slice: dict[str, Any]  # data / training / evaluation sections shared by every entry
    seed: int  # the training seed the test runs
    protocol: str
    entries: tuple[FloorEntry, ...]

    def entry(self, name: str) -> FloorEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise ConfigError(f"{self.path}: no entry {name!r}; entries: {self.names()}")

    def names(self) -> str:
        return ", ".join(e.name for e in self.entries)

    def protocol_of(self, entry: FloorEntry) -> str:
        """The protocol ``entry`` is tested under (click-through models rank sampled
        candidates: their full ranking scores every item with its own evolution pass)."""
        return entry.protocol or self.protocol

    def config(self, entry: FloorEntry, data: Path, run_dir: Path, seed: int) -> dict[str, Any]:
        """The training config of ``entry`` on the slice read from ``data``."""
        s = self.slice
        return {
            "data": {**s.get("data", {}), "dataset": str(data)},
            "model": dict(entry.model),
            "training": {**s.get("training", {}), **entry.training, "seed": seed},
            "evaluation": {**s.get("evaluation", {}), "protocols": [self.protocol_of(entry)]},
            "output": {"dir": str(run_dir)},
        }


def load_floors(path: Path | str = FLOORS_FILE) -> Floors:
    path = Path(path)
    raw = read_yaml(path)
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key '{unknown[0]}'; valid keys: {', '.join(TOP_KEYS)}")
    entries = []
    for name, spec in (raw.get("models") or {}).items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("model"), Mapping):
            raise ConfigError(f"{path}: models.{name}: expected a mapping with a 'model' section")
        bad = sorted(set(spec) - set(ENTRY_KEYS))
        if bad:
            raise ConfigError(
                f"{path}: models.{name}: unknown key '{bad[0]}'; valid: {', '.join(ENTRY_KEYS)}"
            )
        parts = {
            k: dict(spec.get(k) or {}) for k in ENTRY_KEYS if k not in ("recorded", "protocol")
        }
        protocol = None if spec.get("protocol") is None else str(spec["protocol"])
        recorded = str(spec.get("recorded", ""))
        entries.append(FloorEntry(str(name), **parts, recorded=recorded, protocol=protocol))
    if not entries:
        raise ConfigError(f"{path}: models: expected at least one entry")
    return Floors(path, dict(raw.get("slice") or {}), int(raw.get("seed", 1)),
                  str(raw.get("protocol", "full")), tuple(entries))  # fmt: skip


def record(
    entry: FloorEntry, results: list[dict[str, dict[str, float]]], metrics: list[str], date: str
) -> FloorEntry:
    """``entry`` with the figures of ``results`` (one per seed, the test seed first).

    Each result maps a metric to its ``mean``, ``ci_low`` and ``ci_high`` under the protocol.
    """
    measured, floor, margin = {}, {}, {}
    for metric in metrics:
        first = results[0][metric]
        half = (first["ci_high"] - first["ci_low"]) / 2
        values = [r[metric]["mean"] for r in results]
        spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        margin[metric] = max(half, 3 * spread)
        measured[metric] = round(first["mean"], 4)
        # rounded down, so that the floor never ends above value - margin
        floor[metric] = math.floor((first["mean"] - margin[metric]) * 1e4) / 1e4
    margin = {m: round(v, 4) for m, v in margin.items()}
    return dataclasses.replace(entry, measured=measured, margin=margin, floor=floor, recorded=date)
