"""What a run leaves on disk besides the model: metrics, per-user values, history, plot, report.

Run folder::

    config.yaml              the resolved config (load_config reads it back)
    metrics.json             test metrics per protocol: mean, 95% bootstrap CI, n
    per_user/<protocol>.parquet   every test user's metric values (raw user ids)
    history.csv              per epoch (appended as each ends): loss, validation metric, wall time,
                             peak resident memory
    training.png             loss and validation metric against epoch and wall time
    report.md                data, split, training and the metric tables
    model/                   weights.safetensors, config.json, items.json
    checkpoints/             last.ckpt (resume), best.safetensors (best validation weights)
    logs/csv/                Lightning's CSV log
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from seqrec.config import Config
from seqrec.data.corpus import Vocabulary
from seqrec.data.stats import corpus_stats, feature_report_lines
from seqrec.evaluation.result import EvalResult
from seqrec.evaluation.seeds import SeedsResult
from seqrec.training.fit import HISTORY
from seqrec.training.steps_from import best_step

if TYPE_CHECKING:
    from seqrec.training.fit import FitResult
    from seqrec.training.prepare import PreparedData

PLOT = "training.png"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_results(
    folder: Path, results: Mapping[str, EvalResult | SeedsResult], users: Vocabulary
) -> dict[str, Any]:
    """``metrics.json`` and ``per_user/<protocol>.parquet`` for results on one evaluation set."""
    folder.mkdir(parents=True, exist_ok=True)
    metrics = {name: result.to_dict() for name, result in results.items()}
    _write_atomic(folder / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    (folder / "per_user").mkdir(exist_ok=True)
    for name, result in results.items():
        frame = pl.DataFrame({"user": users.decode(result.users), **result.per_user})
        frame.write_parquet(folder / "per_user" / f"{name}.parquet")
    return metrics


def plot_history(history: list[dict[str, float]], metric: str, path: Path) -> Path | None:
    """Loss and validation metric against epoch (left) and wall time (right); None if no epochs."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = f"valid_{metric}"
    epochs = [r["epoch"] for r in history]
    seconds = [r["time_s"] for r in history]
    loss = [r["train_loss"] for r in history]
    checked = [(r["epoch"], r["time_s"], r[key]) for r in history if key in r]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for column, (ax, x, label) in enumerate(
        ((axes[0], epochs, "epoch"), (axes[1], seconds, "wall time (s)"))
    ):
        ax.plot(x, loss, color="tab:blue", marker=".")
        ax.set_xlabel(label)
        ax.set_ylabel("training loss", color="tab:blue")
        if checked:
            twin = ax.twinx()
            twin.plot(
                [c[column] for c in checked],
                [c[2] for c in checked],
                color="tab:orange",
                marker="o",
            )
            twin.set_ylabel(f"validation {metric}", color="tab:orange")
    fig.suptitle("training loss and validation metric")
    tmp = path.with_name("tmp-" + path.name)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def format_number(value: float | int) -> str:
    """Integers in full with thousands separators; floats with 4 significant digits.

    >>> format_number(31010), format_number(41.2837), format_number(12345.678)
    ('31,010', '41.28', '12,346')
    """
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _data_section(config: Config, data: PreparedData) -> list[str]:
    lines = [f"## Data\n\nSource: `{config.data.dataset}`.\n"]
    lines += [f"- {line}" for line in data.corpus.load_report()]
    lines += ["", "| statistic | value |", "|---|---|"]
    for name, value in corpus_stats(data.corpus).items():
        shown = f"{value:.4%}" if name == "density" else format_number(value)
        lines.append(f"| {name.replace('_', ' ')} | {shown} |")
    for what, table in (("item", data.item_features), ("user", data.user_features)):
        if table is not None:
            lines += feature_report_lines(table, what)
    split = data.split
    n_train = int(split.train.lengths.sum())
    lines += [
        "", f"## Split\n\n`{config.data.split.kind}`: {n_train:,} training interactions, "
        f"{len(split.valid):,} validation users, {len(split.test):,} test users.",
    ]  # fmt: skip
    lines += [f"- {note}" for note in split.notes]
    return lines


def _length(config: Config, fitted: FitResult) -> str:
    """How long training ran: epochs, and with ``training.max_steps`` the steps and their source;
    the length of the learning-rate decay where ``training.schedule_steps`` sets it."""
    t = config.training
    best = None if t.steps_from is None else best_step(t.steps_from, config.data.dataset)
    schedule = ""
    if t.schedule_steps:
        followed = best is not None and t.schedule_steps == best.schedule_steps
        origin = "that run's learning-rate path" if followed else "training.schedule_steps"
        schedule = f", the learning rate decaying over {t.schedule_steps:,} steps ({origin})"
    if t.max_steps is None:
        return f"{fitted.epochs_run} epochs of at most {t.epochs}{schedule}"
    done = int(fitted.history[-1].get("step") or 0) if fitted.history else 0
    source = "training.max_steps"
    if best is not None:
        source += ": " + best.describe()
    return f"{fitted.epochs_run} epochs, {done:,} of {t.max_steps:,} steps ({source}){schedule}"


def _training_section(config: Config, fitted: FitResult) -> list[str]:
    t = config.training
    if fitted.windows == 0:
        return ["", "## Training", "", "Nothing to train: fitted from the training split."]
    best = "no validation set: last epoch kept"
    if config.data.split.train_on_validation:
        best = (
            "trained on the validation items too (data.split.train_on_validation): "
            "last weights kept"
        )
    if t.eval_every == 0:
        best = "no validation (training.eval_every 0): last epoch kept"
    if fitted.best_epoch is not None:
        best = (
            f"best epoch {fitted.best_epoch} (validation {fitted.metric} {fitted.best_value:.4f})"
        )
    peak = fitted.history[-1].get("peak_rss_mib") if fitted.history else None
    memory = ""
    if peak is not None:
        memory = f" Peak resident memory {peak:,.0f} MiB (per epoch: {HISTORY})."
    return [
        "", "## Training", "",
        f"{_length(config, fitted)} ({fitted.windows:,} training windows, batch size "
        f"{t.batch_size}, lr {t.lr:g}) in {fitted.train_time_s:.1f} s; {best}.{memory}",
        "", f"![training curves]({PLOT})",
    ]  # fmt: skip


def _seeds_section(fits: list[FitResult | None], seeds: tuple[int, ...]) -> list[str]:
    lines = ["", "## Training, per seed", "", "| seed | epochs | best epoch | seconds |"]
    lines.append("|---|---|---|---|")
    for seed, fitted in zip(seeds, fits, strict=True):
        if fitted is None:  # finished before the run was resumed: see its own report
            lines.append(f"| {seed} | earlier session | - | - |")
            continue
        best = "-" if fitted.best_epoch is None else str(fitted.best_epoch)
        lines.append(f"| {seed} | {fitted.epochs_run} | {best} | {fitted.train_time_s:.1f} |")
    lines += ["", "Each seed's own report, model and curves are in its `seed-<s>/` folder."]
    return lines


def _write(
    run_dir: Path, title: str, sections: list[str], heading: str, results: Mapping[str, Any]
) -> Path:
    """``report.md``: the title, the sections, then every protocol's metric table."""
    lines = [f"# {title}", "", *sections, "", f"## {heading}"]
    for result in results.values():
        lines += ["", result.to_markdown()]
    lines += ["", f"Run folder: `{run_dir}`; resolved config: `config.yaml`."]
    path = run_dir / "report.md"
    _write_atomic(path, "\n".join(lines) + "\n")
    return path


def write_seeds_report(
    run_dir: Path,
    config: Config,
    data: PreparedData,
    fits: list[FitResult | None],
    results: dict[str, SeedsResult],
) -> Path:
    """``report.md`` of a run of several seeds: data, per-seed training, metrics across seeds."""
    sections = _data_section(config, data) + _seeds_section(fits, config.training.seeds)
    level = f"{config.evaluation.bootstrap.level:.0%}"
    title = f"{config.model.name} on {config.data.dataset}, {len(fits)} seeds"
    heading = f"Test metrics: mean and spread over seeds, {level} bootstrap CI over users"
    return _write(run_dir, title, sections, heading, results)


def write_report(
    run_dir: Path,
    config: Config,
    data: PreparedData,
    fitted: FitResult,
    results: dict[str, EvalResult],
) -> Path:
    """``report.md`` and the plot of training curves it shows (``history.csv`` is written by
    training itself, one row per epoch)."""
    if fitted.history:
        plot_history(fitted.history, fitted.metric, run_dir / PLOT)
    sections = _data_section(config, data) + _training_section(config, fitted)
    level = f"{config.evaluation.bootstrap.level:.0%}"
    title = f"{config.model.name} on {config.data.dataset}"
    return _write(
        run_dir, title, sections, f"Test metrics ({level} bootstrap confidence intervals)", results
    )
