"""A suite's two figures: validation metric against wall time, and the headline metric with CIs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seqrec.benchmark.results import ModelSummary, SeedTraining


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    tmp = path.with_name("tmp-" + path.name)
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    return path


def validation_curve(training: SeedTraining, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(wall seconds, validation value) of the epochs that were validated."""
    key = f"valid_{metric}"
    rows = [row for row in training.history if row.get(key) is not None]
    return np.array([r["time_s"] for r in rows]), np.array([r[key] for r in rows])


def mean_curve(trainings: Sequence[SeedTraining], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean time and value over the seeds at each validation every seed reached."""
    curves = [validation_curve(t, metric) for t in trainings]
    n = min(len(times) for times, _ in curves)
    times = np.mean([c[0][:n] for c in curves], axis=0)
    values = np.mean([c[1][:n] for c in curves], axis=0)
    return times, values


def time_to_quality(summaries: Sequence[ModelSummary], metric: str, protocol: str, path: Path):
    """One line per trained model (mean over seeds), each seed thin; models trained without
    validation (``training.eval_every`` 0) or not trained at all are noted in the title."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    untrained, unvalidated = [], []
    for i, s in enumerate(summaries):
        if not s.trained:
            untrained.append(s.name)
            continue
        if not s.validated(metric):
            unvalidated.append(s.name)
            continue
        colour = colours[i % len(colours)]
        for t in s.seeds:
            ax.plot(*validation_curve(t, metric), color=colour, alpha=0.3, linewidth=0.8)
        ax.plot(*mean_curve(s.seeds, metric), color=colour, marker=".", label=s.name)
    ax.set_xlabel("wall time of training (s)")
    ax.set_ylabel(f"validation {metric} ({protocol})")
    note = f"; not trained: {', '.join(untrained)}" if untrained else ""
    note += f"; not validated: {', '.join(unvalidated)}" if unvalidated else ""
    ax.set_title(f"time to quality: mean over seeds, each seed thin{note}", fontsize=10)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    _save(fig, path)
    plt.close(fig)
    return path


def bars(summaries: Sequence[ModelSummary], metric: str, protocols: Sequence[str], path: Path):
    """Per protocol: the seed mean as a bar, its user-bootstrap CI, and each seed as a dot."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        1, len(protocols), figsize=(4 + 2.2 * len(summaries) * len(protocols) / 2, 4.5),
        constrained_layout=True, squeeze=False,
    )  # fmt: skip
    x = np.arange(len(summaries))
    for ax, protocol in zip(axes[0], protocols, strict=True):
        cells = [s.metrics[protocol][metric] for s in summaries]
        means = np.array([c["mean"] for c in cells])
        err = np.array([[c["mean"] - c["ci_low"] for c in cells],
                        [c["ci_high"] - c["mean"] for c in cells]])  # fmt: skip
        ax.bar(x, means, yerr=err, capsize=4, color="tab:blue", alpha=0.7)
        for i, c in enumerate(cells):
            ax.plot([i] * len(c["per_seed"]), c["per_seed"], "k.", markersize=4)
        ax.set_xticks(x, [s.name for s in summaries], rotation=30, ha="right")
        ax.set_title(f"test {metric}, {protocol}")
        ax.grid(axis="y", alpha=0.3)
    level = summaries[0].config.evaluation.bootstrap.level
    fig.suptitle(f"mean over seeds, {level:.0%} user-bootstrap CI, dots: seeds", fontsize=10)
    _save(fig, path)
    plt.close(fig)
    return path
