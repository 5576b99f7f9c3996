"""A suite's ``results.md`` and ``results.json``: tables, significance, command, machine, date."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from seqrec.benchmark.results import ModelSummary, Significance
from seqrec.benchmark.suite import Suite

THROUGHPUT_NOTE = (
    "sequences/s: training windows visited per second of training steps, i.e. windows per epoch "
    "x dupe_factor x epochs run, summed over the seeds, divided by the seconds of training steps "
    "summed over the seeds (validation excluded; it is part of the wall time)."
)


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU, cores, threads, library versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                 if ln.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch_threads": torch.get_num_threads(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def commit() -> str | None:
    """The checkout's git commit (with ``+changes`` if its tracked files were modified)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], check=False).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def _cell(summary: dict[str, Any]) -> str:
    """Mean ± seed spread [CI]; one seed has no spread to show."""
    spread = f" ± {summary['std']:.4f}" if len(summary["per_seed"]) > 1 else ""
    return f"{summary['mean']:.4f}{spread} [{summary['ci_low']:.4f}, {summary['ci_high']:.4f}]"


def metrics_table(summaries: Sequence[ModelSummary], protocol: str) -> list[str]:
    names = list(summaries[0].metrics[protocol])
    lines = [f"| model | {' | '.join(names)} |", "|---" * (len(names) + 1) + "|"]
    for s in summaries:
        cells = [_cell(s.metrics[protocol][m]) for m in names]
        lines.append(f"| {s.name} | {' | '.join(cells)} |")
    return lines


def _mean_std(values: Sequence[float], digits: int = 0) -> str:
    import numpy as np

    if len(values) < 2:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def training_table(summaries: Sequence[ModelSummary]) -> list[str]:
    lines = [
        "| model | wall time per seed (s) | epochs per seed | best epoch per seed | sequences/s |",
        "|---|---|---|---|---|",
    ]
    for s in summaries:
        if not s.trained:
            lines.append(f"| {s.name} | - (fitted from counts) | 0 | - | - |")
            continue
        wall = _mean_std([t.wall_s for t in s.seeds], digits=1)
        epochs = ", ".join(str(t.epochs) for t in s.seeds)
        metric = s.config.training.early_stopping_metric
        best = ", ".join(str(_best_epoch(t.history, metric)) for t in s.seeds)
        if not s.validated(metric):
            best = "- (not validated: last epoch kept)"
        lines.append(f"| {s.name} | {wall} | {epochs} | {best} | {s.sequences_per_s:,.0f} |")
    return lines


def _best_epoch(history: list[dict[str, float]], metric: str) -> int | str:
    key = f"valid_{metric}"
    checked = [row for row in history if row.get(key) is not None]
    if not checked:
        return "-"
    return int(max(checked, key=lambda row: row[key])["epoch"])


def significance_table(rows: Sequence[Significance]) -> list[str]:
    if not rows:
        return ["(one model: nothing to compare)"]
    first = rows[0]
    lines = [
        f"Best by {first.metric}: **{first.best}**, paired over {first.n_users:,} users "
        f"(seed-averaged per-user values).",
        "",
        f"| other model | {first.best} | other | difference | {first.level:.0%} CI | p-value "
        "| Holm-adjusted p |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.other} | {r.best_value:.4f} | {r.other_value:.4f} | {r.diff:+.4f} | "
            f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}] | {r.p_value:.4f} | {r.p_holm:.4f} |"
        )
    return lines


def header(suite: Suite, quick: bool, command: str, info: dict[str, Any]) -> list[str]:
    m = info["machine"]
    threads = f"OMP_NUM_THREADS={m['omp_num_threads']}" if m["omp_num_threads"] else "default"
    seeds = ", ".join(str(s) for s in info["seeds"])
    jobs = info.get("jobs", 1)
    parallel = (
        f"; {jobs} models trained at a time, one process each with "
        f"{info['threads_per_job']} torch thread(s)"
        if jobs > 1
        else ""
    )
    return [
        f"# Benchmark `{suite.name}`{' (quick variant)' if quick else ''}",
        "",
        *([suite.description, ""] if suite.description else []),
        f"- command: `{command}`",
        f"- date: {info['date']}; seqrec commit: {info['commit'] or 'unknown'}",
        f"- machine: {m['cpu']}, {m['cores']} cores ({threads}, {m['torch_threads']} torch "
        f"threads), {m['os']}, Python {m['python']}, torch {m['torch']}{parallel}",
        f"- seeds: {seeds}; every model on the same split, users and sampled negatives "
        "(checked through the evaluation-set fingerprints)",
        f"- training wall time of all models and seeds: {info['training_wall_s'] / 60:.1f} min "
        f"(this call: {info['elapsed_s'] / 60:.1f} min; models already complete are not trained "
        "again)",
    ]


def write_results(
    out: Path,
    suite: Suite,
    quick: bool,
    summaries: Sequence[ModelSummary],
    significance: dict[str, list[Significance]],
    info: dict[str, Any],
) -> tuple[Path, Path]:
    """``results.md`` and ``results.json`` in ``out``; ``info``: command, date, machine, ..."""
    level = f"{suite.evaluation.get('bootstrap', {}).get('level', 0.95):.0%}"
    lines = header(suite, quick, info["command"], info)
    for protocol in summaries[0].metrics:
        lines += [
            "", f"## Test metrics, {protocol} ({summaries[0].n_users[protocol]:,} users)", "",
            f"Each cell: mean over seeds ± standard deviation across seeds [{level} user-bootstrap "
            "CI of the seed-averaged per-user values].", "",
        ]  # fmt: skip
        lines += metrics_table(summaries, protocol)
    lines += ["", "## Training", "", *training_table(summaries), "", THROUGHPUT_NOTE]
    lines += ["", "## Significance: the best model against each other one"]
    for protocol, rows in significance.items():
        lines += ["", f"### {protocol}", "", *significance_table(rows)]
    lines += [
        "", "p-values: two-sided sign-flip test over users; Holm's adjustment accounts for the "
        "comparisons of one protocol.", "",
        "![validation metric against wall time](time_to_quality.png)", "",
        "![headline metric with confidence intervals](bars.png)",
    ]  # fmt: skip
    md, js = out / "results.md", out / "results.json"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    payload = {
        "suite": suite.name, "quick": quick, "description": suite.description, **info,
        "metric": suite.metric, "protocol": suite.protocol,
        "models": [s.to_dict() for s in summaries],
        "significance": {p: [asdict(r) for r in rows] for p, rows in significance.items()},
    }  # fmt: skip
    js.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return md, js
