"""After a search: the preset and the best config retrained with the same seeds, side by side.

One trial's validation value is one seed's luck as much as the config's merit. The confirmation
trains both configs with every seed and reports, per config, the best validation value of each
seed (what the search optimised) and the test metrics across seeds, and the paired test
difference of best against preset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from seqrec.benchmark.runner import ensure_run
from seqrec.comparison import MetricComparison, compare_runs, format_comparison
from seqrec.config import Config, OutputConfig
from seqrec.pipeline import load_run


@dataclass(frozen=True)
class ConfigSeeds:
    """One config's runs: best validation value and test metric per seed."""

    label: str
    run_dir: Path
    valid: list[float]
    test: list[float]

    @staticmethod
    def spread(values: Sequence[float]) -> str:
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        return f"{np.mean(values):.4f} ± {std:.4f}"


@dataclass(frozen=True)
class Confirmation:
    metric: str
    protocol: str
    seeds: tuple[int, ...]
    preset: ConfigSeeds
    best: ConfigSeeds
    comparison: list[MetricComparison]
    path: Path


def best_validation(seed_dir: Path, metric: str) -> float:
    """The best validation value of one seed's training, from its history."""
    history = pl.read_csv(seed_dir / "history.csv")
    return float(history[f"valid_{metric}"].drop_nulls().max())


def _train_seeds(label: str, config: Config, seeds: Sequence[int], out: Path, log) -> ConfigSeeds:
    run_dir = out / "confirm" / label
    training = dataclasses.replace(config.training, seeds=tuple(seeds))
    config = dataclasses.replace(config, training=training, output=OutputConfig(str(run_dir)))
    log(f"confirm {label}: seeds {', '.join(map(str, seeds))} -> {run_dir}")
    ensure_run(config, run_dir)
    run = load_run(run_dir)
    metric = config.training.early_stopping_metric
    protocol = config.evaluation.valid_protocol or config.evaluation.protocols[0]
    valid = [best_validation(run_dir / f"seed-{s}", metric) for s in seeds]
    test = list(run.metrics[protocol]["metrics"][metric]["per_seed"])
    return ConfigSeeds(label, run_dir, valid, test)


def confirm(
    preset: Config, best: Config, seeds: Sequence[int], out: Path, log: Callable[[str], None]
) -> Confirmation:
    """Train both with ``seeds`` (resumable), compare, write ``confirm.md``."""
    metric = preset.training.early_stopping_metric
    protocol = preset.evaluation.valid_protocol or preset.evaluation.protocols[0]
    a = _train_seeds("preset", preset, seeds, out, log)
    b = _train_seeds("best", best, seeds, out, log)
    comparison = compare_runs(b.run_dir, a.run_dir, [metric], [protocol])
    lines = [
        f"# Confirmation: preset and best config, seeds {', '.join(map(str, seeds))}",
        "",
        f"| config | best validation {metric} per seed | mean ± std | test {metric} ({protocol}) "
        "per seed | mean ± std |",
        "|---|---|---|---|---|",
    ]
    for c in (a, b):
        lines.append(
            f"| {c.label} | {', '.join(f'{v:.4f}' for v in c.valid)} | {c.spread(c.valid)} | "
            f"{', '.join(f'{v:.4f}' for v in c.test)} | {c.spread(c.test)} |"
        )
    lines += ["", "Test, best against preset (seed-averaged per-user values):", ""]
    lines += [format_comparison(b.run_dir, a.run_dir, comparison)]
    path = out / "confirm.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Confirmation(metric, protocol, tuple(seeds), a, b, comparison, path)
