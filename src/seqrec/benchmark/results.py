"""What a suite's finished runs say: per-model metrics and training cost, and the significance of
the best model against each other one. Everything is read back from the run folders.

Throughput is defined once, here: **sequences/s** = training windows visited per second of
training steps = windows per epoch x ``dupe_factor`` x epochs run, summed over the seeds, divided
by the seconds of training steps summed over the seeds (validation time excluded; it is in the
wall time).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from seqrec.comparison import compare_runs
from seqrec.config import Config, load_config
from seqrec.training.data import window_bounds
from seqrec.training.export import load_model_dir


@dataclass(frozen=True)
class SeedTraining:
    """One seed's training, from its ``history.csv`` (empty for a model fitted from counts)."""

    seed: int
    history: list[dict[str, float]]

    @property
    def epochs(self) -> int:
        return len(self.history)

    @property
    def wall_s(self) -> float:
        """Wall time of training including validation."""
        return float(self.history[-1]["time_s"]) if self.history else 0.0

    @property
    def step_s(self) -> float:
        """Seconds of training steps only."""
        return float(sum(row["train_s"] for row in self.history))


@dataclass(frozen=True)
class ModelSummary:
    """One suite entry's test metrics across seeds and its training cost."""

    name: str
    run_dir: Path
    config: Config
    metrics: dict[str, dict[str, dict[str, Any]]]  # protocol -> metric -> mean, std, CI, per_seed
    n_users: dict[str, int]
    seeds: list[SeedTraining]
    visits_per_epoch: int  # training windows x dupe_factor
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def trained(self) -> bool:
        return any(s.epochs for s in self.seeds)

    def validated(self, metric: str) -> bool:
        """Whether any seed was validated on ``metric`` (none is with ``training.eval_every`` 0)."""
        return any(row.get(f"valid_{metric}") is not None for s in self.seeds for row in s.history)

    @property
    def sequences_per_s(self) -> float | None:
        seconds = sum(s.step_s for s in self.seeds)
        if not self.trained or seconds <= 0:
            return None
        return self.visits_per_epoch * sum(s.epochs for s in self.seeds) / seconds

    def value(self, protocol: str, metric: str) -> float:
        return float(self.metrics[protocol][metric]["mean"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "run_dir": str(self.run_dir),
            "model": self.config.model.name,
            **self.extra,
            "metrics": self.metrics,
            "n_users": self.n_users,
            "training": {
                "seeds": [s.seed for s in self.seeds],
                "epochs": [s.epochs for s in self.seeds],
                "wall_s": [s.wall_s for s in self.seeds],
                "step_s": [s.step_s for s in self.seeds],
                "visits_per_epoch": self.visits_per_epoch,
                "sequences_per_s": self.sequences_per_s,
            },
        }


def _history(seed_dir: Path) -> list[dict[str, float]]:
    path = seed_dir / "history.csv"
    return pl.read_csv(path).to_dicts() if path.is_file() else []


def visits_per_epoch(config: Config, train_lengths: np.ndarray, seed_dir: Path) -> int:
    """Training windows of the run's split and model width, times ``dupe_factor``."""
    model, _, _ = load_model_dir(seed_dir / "model")
    rows, _ = window_bounds(train_lengths, int(model.train_seq_len), config.training.window_step)
    return len(rows) * config.training.dupe_factor


def summarise_run(name: str, run_dir: Path, train_lengths: np.ndarray) -> ModelSummary:
    """A finished multi-seed run folder read back (its metrics.json and each seed's history)."""
    config = load_config(run_dir / "config.yaml")
    saved = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    seeds = config.training.seeds or (config.training.seed,)
    seed_dirs = [run_dir / f"seed-{s}" for s in seeds] if config.training.seeds else [run_dir]
    trainings = [SeedTraining(s, _history(d)) for s, d in zip(seeds, seed_dirs, strict=True)]
    visits = 0
    if any(t.epochs for t in trainings):
        visits = visits_per_epoch(config, train_lengths, seed_dirs[0])
    metrics = {p: _metric_summary(saved[p]["metrics"]) for p in saved}
    n_users = {p: int(saved[p]["n_users"]) for p in saved}
    return ModelSummary(name, run_dir, config, metrics, n_users, trainings, visits)


def _metric_summary(saved: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """mean, std over seeds, CI and per-seed values (a single run: std 0, one value)."""
    out = {}
    for metric, s in saved.items():
        out[metric] = {
            "mean": s["mean"], "std": s.get("std", 0.0), "ci_low": s["ci_low"],
            "ci_high": s["ci_high"], "per_seed": s.get("per_seed", [s["mean"]]),
        }  # fmt: skip
    return out


# ---------------------------------------------------------------- significance


@dataclass(frozen=True)
class Significance:
    """The best model against one other on a protocol's headline metric (paired over users)."""

    protocol: str
    metric: str
    best: str
    other: str
    best_value: float
    other_value: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    p_holm: float
    n_users: int
    level: float


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: controls the chance of any false positive among the tests.

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    order = np.argsort(p_values, kind="stable")
    m, running, adjusted = len(p_values), 0.0, [0.0] * len(p_values)
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[index])))
        adjusted[index] = running
    return adjusted


def best_model(summaries: Sequence[ModelSummary], protocol: str, metric: str) -> ModelSummary:
    """The highest seed-mean of ``metric`` under ``protocol`` (the first listed on a tie)."""
    return max(summaries, key=lambda s: s.value(protocol, metric))


def significance(
    summaries: Sequence[ModelSummary], protocol: str, metric: str
) -> list[Significance]:
    """``compare_runs`` of the best model against each other one, Holm-adjusted p-values."""
    if len(summaries) < 2:
        return []
    best = best_model(summaries, protocol, metric)
    others = [s for s in summaries if s is not best]
    rows = [compare_runs(best.run_dir, other.run_dir, [metric], [protocol])[0] for other in others]
    adjusted = holm([row.p_value for row in rows])
    return [
        Significance(
            protocol, metric, best.name, other.name, row.a, row.b, row.diff, row.ci_low,
            row.ci_high, row.p_value, p_holm, row.n_users, row.level,
        )
        for other, row, p_holm in zip(others, rows, adjusted, strict=True)
    ]  # fmt: skip
