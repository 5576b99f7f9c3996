"""Evaluation results: per-user values, means with bootstrap confidence intervals, comparisons."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from torch import Tensor

from seqrec.config import BootstrapConfig
from seqrec.metrics.ctr import ctr_seeds_summary
from seqrec.metrics.stats import PairedResult, paired_comparison, summarise


@dataclass(frozen=True)
class Impressions:
    """Every scored candidate of a sampled evaluation: its score, click label (1 = a target)
    and the evaluation-set row (user index) it belongs to; 1-D tensors of one length."""

    scores: Tensor
    labels: Tensor
    users: Tensor


@dataclass(frozen=True)
class EvalResult:
    """Metrics of one model on one evaluation set under one protocol.

    ``per_user[name][i]`` is the ranking metric of user ``users[i]``; ``ranks`` (U, T) holds the
    rank of each target (``inf`` padding). ``summary`` gives mean, bootstrap CI (``bootstrap``:
    resamples, level, seed) and n per metric: the ranking metrics first, then the CTR metrics
    ``ctr_metrics`` computed from ``impressions`` (they are not means over users, so they have no
    per-user values; their intervals resample the same users with the same draws). The result
    of several seeds (``seqrec.evaluation.seeds``) holds each seed's ``seed_impressions`` instead:
    its CTR metrics are the means over the seeds, with intervals from the same resamples averaged
    over the seeds. ``fingerprint`` identifies the evaluation set and its candidates (users,
    histories, targets, protocol, negatives), so that two results can be checked to be comparable.
    """

    protocol: str
    users: np.ndarray
    per_user: dict[str, np.ndarray]
    ranks: np.ndarray
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    fingerprint: str = ""
    impressions: Impressions | None = field(default=None, repr=False)
    ctr_metrics: tuple[str, ...] = ()
    seed_impressions: tuple[Impressions, ...] = field(default=(), repr=False)
    summary: dict[str, dict[str, float]] = field(init=False)

    def __post_init__(self) -> None:
        b = self.bootstrap
        summary = summarise(self.per_user, b.resamples, b.level, b.seed)
        if self.ctr_metrics:
            own = () if self.impressions is None else (self.impressions,)
            shown = self.seed_impressions or own
            if not shown:
                raise ValueError(f"{', '.join(self.ctr_metrics)} need the impressions")
            summary |= ctr_seeds_summary(
                [(s.scores, s.labels, s.users) for s in shown], self.ctr_metrics,
                b.resamples, b.level, b.seed,
            )  # fmt: skip
        object.__setattr__(self, "summary", summary)

    def __getitem__(self, metric: str) -> float:
        return self.summary[metric]["mean"]

    def compare(self, other: EvalResult, metric: str) -> PairedResult:
        """Paired difference ``self - other`` over the same users, with CI and p-value."""
        if metric in self.ctr_metrics:
            raise ValueError(
                f"{metric} is not a mean over users, so it has no paired per-user comparison; "
                "compare its confidence intervals instead"
            )
        if self.protocol != other.protocol or not np.array_equal(self.users, other.users):
            raise ValueError("paired comparison needs the same users under the same protocol")
        b = self.bootstrap
        return paired_comparison(
            self.per_user[metric], other.per_user[metric], b.resamples, b.level, b.seed
        )

    def to_dict(self) -> dict:
        b = self.bootstrap
        return {
            "protocol": self.protocol,
            "n_users": len(self.users),
            "eval_set": self.fingerprint,
            "bootstrap": {"resamples": b.resamples, "level": b.level, "seed": b.seed},
            "metrics": self.summary,
        }

    def to_markdown(self) -> str:
        lines = [
            f"protocol: {self.protocol}, users: {len(self.users):,}",
            "",
            f"| metric | value | {self.bootstrap.level:.0%} CI |",
            "|---|---|---|",
        ]
        for name, s in self.summary.items():
            lines.append(f"| {name} | {s['mean']:.4f} | [{s['ci_low']:.4f}, {s['ci_high']:.4f}] |")
        return "\n".join(lines)

    def save(self, run_dir: Path, prefix: str = "") -> None:
        """Writes ``<prefix>metrics.json`` and ``<prefix>per_user.parquet`` into ``run_dir``."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / f"{prefix}metrics.json").write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        frame = pl.DataFrame({"user": self.users, **self.per_user})
        frame.write_parquet(run_dir / f"{prefix}per_user.parquet")
