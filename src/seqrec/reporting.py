"""What a run leaves on disk besides the model: metrics, per-user values, history, plot, report.

Run folder::

    config.yaml              the resolved config (load_config reads it back)
    metrics.json             test metrics per protocol: mean, 95% bootstrap CI, n
    per_user/<protocol>.parquet   every test user's metric values (raw user ids)
    history.csv              per epoch: training loss, validation metric, wall time
    training.png             loss and validation metric against epoch and wall time
    report.md                data, split, training and the metric tables
    model/                   weights.safetensors, config.json, items.json
    checkpoints/             last.ckpt (resume), best.safetensors (best validation weights)
    logs/csv/                Lightning's CSV log
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from seqrec.config import Config
from seqrec.data.corpus import Vocabulary
from seqrec.data.stats import corpus_stats, feature_report_lines
from seqrec.evaluation.result import EvalResult

if TYPE_CHECKING:
    from seqrec.training.fit import FitResult
    from seqrec.training.prepare import PreparedData

PLOT = "training.png"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_results(folder: Path, results: dict[str, EvalResult], users: Vocabulary) -> dict[str, Any]:
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


def _data_section(config: Config, data: PreparedData) -> list[str]:
    lines = [f"## Data\n\nSource: `{config.data.dataset}`, {data.n_rows:,} interactions read.\n"]
    lines += [f"- {step.describe()}" for step in data.corpus.filters] or ["- no filters"]
    lines += ["", "| statistic | value |", "|---|---|"]
    for name, value in corpus_stats(data.corpus).items():
        shown = f"{value:.4%}" if name == "density" else f"{value:,.4g}"
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


def _training_section(config: Config, fitted: FitResult) -> list[str]:
    t = config.training
    best = "no validation set: last epoch kept"
    if fitted.best_epoch is not None:
        best = (
            f"best epoch {fitted.best_epoch} (validation {fitted.metric} {fitted.best_value:.4f})"
        )
    return [
        "", "## Training", "",
        f"{fitted.epochs_run} epochs of at most {t.epochs} ({fitted.windows:,} training windows, "
        f"batch size {t.batch_size}, lr {t.lr:g}) in {fitted.train_time_s:.1f} s; {best}.",
        "", f"![training curves]({PLOT})",
    ]  # fmt: skip


def write_report(
    run_dir: Path,
    config: Config,
    data: PreparedData,
    fitted: FitResult,
    results: dict[str, EvalResult],
) -> Path:
    """``report.md``, with the history CSV and the plot of training curves it shows."""
    if fitted.history:
        pl.from_dicts(fitted.history, infer_schema_length=None).write_csv(run_dir / "history.csv")
        plot_history(fitted.history, fitted.metric, run_dir / PLOT)
    lines = [f"# {config.model.name} on {config.data.dataset}", ""]
    lines += _data_section(config, data)
    lines += _training_section(config, fitted)
    lines += ["", "## Test metrics (95% bootstrap confidence intervals)"]
    for result in results.values():
        lines += ["", result.to_markdown()]
    lines += ["", f"Run folder: `{run_dir}`; resolved config: `config.yaml`."]
    path = run_dir / "report.md"
    _write_atomic(path, "\n".join(lines) + "\n")
    return path
