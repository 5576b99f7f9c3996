"""``seqrec benchmark SUITE``: train every model of a suite (resumably), then write its results.

Output folder (default ``benchmarks/results/<suite>/``, ``<suite>-quick/`` for ``--quick``)::

    runs/<model>/         one run folder per model, one ``seed-<s>/`` inside per seed
    results.md            tables: test metrics, training cost, significance (with command, date)
    results.json          the same figures as data
    time_to_quality.png   validation metric against wall time, one line per model
    bars.png              the headline metric per model with its CI

A model whose run folder is complete is not trained again, one that was interrupted is resumed,
and a folder holding a run of another config is an error (delete it or choose ``--output``).

``jobs`` > 1 trains that many entries at once, each in its own process with ``cores // jobs``
torch threads (at least one): the small models of a suite use one core far better than two
(``benchmarks/ddp_scaling.py``), so on a 2-core machine two single-thread jobs nearly halve the
wall time. Entries start in the suite's order, so a suite lists its slowest models first. Every
run is seeded, so the figures do not depend on ``jobs`` (given the same threads per run).
"""

from __future__ import annotations

import multiprocessing
import os
import shlex
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seqrec.arguments import positive_int
from seqrec.benchmark import plots
from seqrec.benchmark.report import commit, machine, write_results
from seqrec.benchmark.results import ModelSummary, Significance, significance, summarise_run
from seqrec.benchmark.suite import RESULTS_DIR, SUITES_DIR, Entry, Suite
from seqrec.config import Config, ConfigError, config_to_dict, load_config
from seqrec.pipeline import resume, train
from seqrec.training.prepare import prepare_data


@dataclass(frozen=True)
class SuiteResults:
    """What ``run_suite`` wrote, and the figures in it."""

    out: Path
    summaries: list[ModelSummary]
    significance: dict[str, list[Significance]]
    results_md: Path
    results_json: Path
    trained: list[str]  # models trained or resumed in this call (the others were complete)


def output_dir(suite: Suite, quick: bool) -> Path:
    return RESULTS_DIR / (suite.name + ("-quick" if quick else ""))


def flatten(raw: Any, prefix: str = "") -> dict[str, Any]:
    """Nested plain data as dotted keys: ``{"training": {"lr": 1}}`` -> ``{"training.lr": 1}``."""
    if not isinstance(raw, dict):
        return {prefix: raw}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return out


def config_difference(saved: Config, wanted: Config) -> str | None:
    """The first config key (output aside) whose value differs, as 'key: saved vs wanted'."""
    a, b = (flatten({**config_to_dict(c), "output": None}) for c in (saved, wanted))
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return f"{key}: {a.get(key)!r} there, {b.get(key)!r} now"
    return None


def is_complete(run_dir: Path) -> bool:
    return (run_dir / "metrics.json").is_file() and (run_dir / "config.yaml").is_file()


def check_same_config(config: Config, run_dir: Path) -> None:
    """A run folder of another config is an error, never reused."""
    difference = config_difference(load_config(run_dir / "config.yaml"), config)
    if difference:
        raise ConfigError(
            f"{run_dir} holds a run of another config ({difference}); "
            "delete the folder or give another --output"
        )


def ensure_run(config: Config, run_dir: Path) -> str:
    """Train, resume or keep the entry's run; returns which ('trained', 'resumed', 'complete')."""
    if (run_dir / "config.yaml").is_file():
        check_same_config(config, run_dir)
        if is_complete(run_dir):
            return "complete"
        resume(run_dir)
        return "resumed"
    train(config)
    return "trained"


def threads_per_job(jobs: int) -> int:
    """Torch threads of each of ``jobs`` parallel runs: the machine's cores shared out."""
    return max(1, (os.cpu_count() or 1) // jobs)


def _start_job(threads: int) -> None:
    torch.set_num_threads(threads)


def _train_entries(
    jobs: list[tuple[str, Config, Path]], n_jobs: int, log: Callable[[str], None]
) -> list[str]:
    """Train, resume or keep each (name, config, run folder); the names trained or resumed."""
    trained = []
    if n_jobs <= 1:
        for i, (name, config, run_dir) in enumerate(jobs, start=1):
            log(f"[{i}/{len(jobs)}] {name}: {config.model.name} -> {run_dir}")
            state = ensure_run(config, run_dir)
            log(f"[{i}/{len(jobs)}] {name}: {state}")
            trained += [name] if state != "complete" else []
        return trained
    threads = threads_per_job(n_jobs)
    log(f"{len(jobs)} models, {n_jobs} at a time, {threads} torch thread(s) each")
    spawn = multiprocessing.get_context("spawn")  # no forked torch thread pools
    with ProcessPoolExecutor(n_jobs, spawn, _start_job, (threads,)) as pool:
        futures = {pool.submit(ensure_run, config, out): name for name, config, out in jobs}
        states = {}
        try:  # in the order they finish, so that an entry's error stops the suite at once
            for done, future in enumerate(as_completed(futures), start=1):
                states[futures[future]] = future.result()
                log(f"[{done}/{len(jobs)}] {futures[future]}: {states[futures[future]]}")
        except BaseException:
            pool.shutdown(cancel_futures=True)  # entries not started yet are not trained
            raise
    return [name for name, _, _ in jobs if states[name] != "complete"]


def _selected(suite: Suite, models: Sequence[str] | None) -> list[Entry]:
    return [suite.entry(name) for name in models] if models else list(suite.entries)


def run_suite(
    suite: Suite,
    quick: bool = False,
    models: Sequence[str] | None = None,
    output: Path | str | None = None,
    log: Callable[[str], None] = print,
    command: str | None = None,
    jobs: int = 1,
) -> SuiteResults:
    """Train the suite's models (or only ``models``), ``jobs`` at a time, then tabulate every
    complete one."""
    jobs = positive_int(jobs, "jobs")
    out = Path(output) if output is not None else output_dir(suite, quick)
    started = time.perf_counter()
    chosen = [
        (e.name, suite.config_of(e, quick, out / "runs" / e.name), out / "runs" / e.name)
        for e in _selected(suite, models)
    ]  # every entry's config checked before any training
    trained = _train_entries(chosen, jobs, log)
    done = [e for e in suite.entries if is_complete(out / "runs" / e.name)]
    summaries = _summaries(suite, done, quick, out)
    tests = {p: significance(summaries, p, suite.metric) for p in summaries[0].metrics}
    first = summaries[0].config
    info = {
        "command": command or _command(suite, quick, models, output, jobs),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "commit": commit(),
        "seeds": list(first.training.seeds or [first.training.seed]),
        "elapsed_s": time.perf_counter() - started,
        "training_wall_s": sum(t.wall_s for s in summaries for t in s.seeds),
        "trained_now": trained,
        "jobs": jobs,
        "threads_per_job": threads_per_job(jobs) if jobs > 1 else torch.get_num_threads(),
    }
    out.mkdir(parents=True, exist_ok=True)
    md, js = write_results(out, suite, quick, summaries, tests, info)
    valid = first.evaluation.valid_protocol or first.evaluation.protocols[0]
    plots.time_to_quality(summaries, suite.metric, valid, out / "time_to_quality.png")
    plots.bars(summaries, suite.metric, list(summaries[0].metrics), out / "bars.png")
    return SuiteResults(out, summaries, tests, md, js, trained)


def _summaries(suite: Suite, done: list[Entry], quick: bool, out: Path) -> list[ModelSummary]:
    """Every complete entry read back from its run folder (the data is read once for all)."""
    train_lengths = prepare_data(suite.config_of(done[0], quick, out).data).split.train.lengths
    summaries = []
    for entry in done:  # also those not trained in this call: their config must be the suite's
        check_same_config(suite.config_of(entry, quick, out / "runs" / entry.name),
                          out / "runs" / entry.name)  # fmt: skip
        summary = summarise_run(entry.name, out / "runs" / entry.name, train_lengths)
        summary.extra.update({"preset": str(entry.config), "overrides": dict(entry.overrides)})
        summaries.append(summary)
    return summaries


def _command(
    suite: Suite, quick: bool, models: Sequence[str] | None, output: Path | str | None, jobs: int
) -> str:
    named = suite.path.parent.resolve() == SUITES_DIR.resolve()
    parts = ["seqrec", "benchmark", suite.name if named else str(suite.path)]
    parts += ["--quick"] if quick else []
    parts += ["--models", *models] if models else []
    parts += ["--output", str(output)] if output is not None else []
    parts += ["--jobs", str(jobs)] if jobs > 1 else []
    return shlex.join(parts)
