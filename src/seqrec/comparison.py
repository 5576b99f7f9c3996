"""Paired comparison of two finished runs from their saved per-user values (no re-evaluation).

Two runs can be compared on a protocol only if they were scored on the same evaluation set: the
same users, histories and targets, and for sampled protocols the same negatives. Every run's
``metrics.json`` carries a fingerprint of that set per protocol, so the check is exact. The
difference ``A - B`` of each metric gets a bootstrap interval over users (pairs kept together) and
a sign-flip p-value, with run A's bootstrap settings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from seqrec.config import BootstrapConfig, ConfigError
from seqrec.metrics.stats import paired_comparison


@dataclass(frozen=True)
class MetricComparison:
    """Run A against run B on one metric of one protocol."""

    protocol: str
    metric: str
    a: float
    b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n_users: int
    level: float


def _saved_metrics(run: Path) -> dict:
    path = run / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run} has no test results: metrics.json is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from error


def _per_user(run: Path, protocol: str) -> pl.DataFrame:
    path = run / "per_user" / f"{protocol}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{run} has no per-user values for {protocol}: {path} is missing")
    return pl.read_parquet(path)


def _check_same_set(a: Path, b: Path, protocol: str, saved_a: dict, saved_b: dict) -> None:
    fa = saved_a[protocol].get("eval_set")
    fb = saved_b[protocol].get("eval_set")
    if fa and fb and fa != fb:
        raise ConfigError(
            f"{a} and {b} were not scored on the same {protocol} evaluation set (other users, "
            "histories, targets or negatives): compare runs of the same data, split and "
            "evaluation.negatives_seed"
        )


def _bootstrap(saved: dict, protocol: str) -> BootstrapConfig:
    return BootstrapConfig(**saved[protocol].get("bootstrap", {}))


def compare_runs(
    a: str | Path,
    b: str | Path,
    metrics: Sequence[str] | None = None,
    protocols: Sequence[str] | None = None,
) -> list[MetricComparison]:
    """Every shared (or requested) protocol and metric of run ``a`` against run ``b``."""
    a, b = Path(a), Path(b)
    saved_a, saved_b = _saved_metrics(a), _saved_metrics(b)
    shared = [p for p in saved_a if p in saved_b]
    wanted = list(protocols or shared)
    missing = [p for p in wanted if p not in shared]
    if missing or not wanted:
        raise ConfigError(
            f"protocol {missing[0] if missing else '(none)'} is not in both runs; "
            f"{a} has {', '.join(saved_a)}, {b} has {', '.join(saved_b)}"
        )
    rows = []
    for protocol in wanted:
        _check_same_set(a, b, protocol, saved_a, saved_b)
        rows += _compare_protocol(a, b, protocol, metrics, _bootstrap(saved_a, protocol))
    return rows


def _compare_protocol(
    a: Path, b: Path, protocol: str, metrics: Sequence[str] | None, bootstrap: BootstrapConfig
) -> list[MetricComparison]:
    users_a, users_b = _per_user(a, protocol), _per_user(b, protocol)
    if sorted(users_a["user"].to_list()) != sorted(users_b["user"].to_list()):
        raise ConfigError(f"{a} and {b} were tested on different users under {protocol}")
    joined = users_a.join(users_b, on="user", how="inner", suffix="_b")
    shared = [c for c in users_a.columns if c != "user" and c in users_b.columns]
    names = list(metrics or shared)
    unknown = [m for m in names if m not in shared]
    if unknown:
        raise ConfigError(
            f"metric {unknown[0]!r} is not saved for both runs under {protocol}; "
            f"shared metrics: {', '.join(shared)}"
        )
    rows, b = [], bootstrap
    for name in names:
        values_a, values_b = joined[name].to_numpy(), joined[f"{name}_b"].to_numpy()
        paired = paired_comparison(values_a, values_b, b.resamples, b.level, b.seed)
        means = float(values_a.mean()), float(values_b.mean())
        interval = paired.mean_diff, paired.low, paired.high, paired.p_value
        rows.append(MetricComparison(protocol, name, *means, *interval, joined.height, b.level))
    return rows


def format_comparison(a: str | Path, b: str | Path, rows: list[MetricComparison]) -> str:
    """A Markdown table per protocol: A, B, A - B with its interval, p-value."""
    lines = [f"A: {a}", f"B: {b}"]
    for protocol in dict.fromkeys(row.protocol for row in rows):
        mine = [row for row in rows if row.protocol == protocol]
        lines += [
            "",
            f"protocol: {protocol}, users: {mine[0].n_users:,} (paired)",
            "",
            f"| metric | A | B | A - B | {mine[0].level:.0%} CI | p-value |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r.metric} | {r.a:.4f} | {r.b:.4f} | {r.diff:+.4f} | "
            f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}] | {r.p_value:.4f} |"
            for r in mine
        ]
    return "\n".join(lines)
