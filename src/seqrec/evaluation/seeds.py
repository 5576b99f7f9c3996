"""Test metrics of one model trained with several seeds: the spread across seeds beside the CI.

A user-bootstrap interval says how much a figure would move with other test users; it says
nothing about how much it moves with another training seed. A run of several seeds reports both:
each metric's mean over the seeds, its standard deviation across them, and the bootstrap interval
of the per-user values averaged over the seeds (for the CTR metrics, which have no per-user
values: each user resample's value averaged over the seeds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seqrec.evaluation.result import EvalResult


@dataclass(frozen=True)
class SeedsResult:
    """One protocol's results for each seed, and ``mean``: per-user values averaged over them."""

    protocol: str
    seeds: tuple[int, ...]
    per_seed: tuple[EvalResult, ...]
    mean: EvalResult

    @property
    def users(self) -> np.ndarray:
        return self.mean.users

    @property
    def per_user(self) -> dict[str, np.ndarray]:
        """Every user's metric values averaged over the seeds (what ``seqrec compare`` pairs)."""
        return self.mean.per_user

    def __getitem__(self, metric: str) -> float:
        return self.mean[metric]

    def std(self, metric: str) -> float:
        """Standard deviation of the metric's test mean across seeds (0 for a single seed)."""
        values = [result[metric] for result in self.per_seed]
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    def to_dict(self) -> dict:
        out = self.mean.to_dict()
        out["seeds"] = list(self.seeds)
        for name, summary in out["metrics"].items():
            summary["std"] = self.std(name)
            summary["per_seed"] = [result[name] for result in self.per_seed]
        return out

    def to_markdown(self) -> str:
        level = f"{self.mean.bootstrap.level:.0%}"
        seeds = ", ".join(str(s) for s in self.seeds)
        lines = [
            f"protocol: {self.protocol}, users: {len(self.users):,}, seeds: {seeds}",
            "",
            f"| metric | mean | std over seeds | {level} CI (users) | per seed |",
            "|---|---|---|---|---|",
        ]
        for name, s in self.mean.summary.items():
            each = ", ".join(f"{result[name]:.4f}" for result in self.per_seed)
            lines.append(
                f"| {name} | {s['mean']:.4f} | {self.std(name):.4f} | "
                f"[{s['ci_low']:.4f}, {s['ci_high']:.4f}] | {each} |"
            )
        return "\n".join(lines)


def across_seeds(results: Sequence[EvalResult], seeds: Sequence[int]) -> SeedsResult:
    """Combine one protocol's results of the same model trained with each of ``seeds``.

    The results must come from the same evaluation set (users, histories, targets, candidates):
    averaging per-user values of different users would mean nothing.
    """
    if len(results) != len(seeds) or not results:
        raise ValueError(f"{len(results)} results for {len(seeds)} seeds")
    first = results[0]
    for seed, result in zip(seeds, results, strict=True):
        same = result.fingerprint == first.fingerprint and np.array_equal(result.users, first.users)
        if result.protocol != first.protocol or not same:
            raise ValueError(
                f"seed {seed} was evaluated on other users or candidates than seed {seeds[0]}"
            )
    per_user = {
        name: np.mean([result.per_user[name] for result in results], axis=0)
        for name in first.per_user
    }
    mean = EvalResult(
        first.protocol, first.users, per_user, np.empty((len(first.users), 0)),
        first.bootstrap, first.fingerprint, ctr_metrics=first.ctr_metrics,
        seed_impressions=tuple(result.impressions for result in results),
    )  # fmt: skip
    return SeedsResult(first.protocol, tuple(seeds), tuple(results), mean)
