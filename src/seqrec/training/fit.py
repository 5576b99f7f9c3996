"""Train one model with Lightning: the Trainer set-up every run shares.

Settings that cost time without telling the user anything are off: no sanity validation loop, no
model summary, no per-step logging (the loss is logged once per epoch), and the progress bar
redraws once a second rather than every step. The bar is drawn only on a terminal: written to a
file it would be tens of kilobytes of carriage returns. Elsewhere (or with ``progress_bar`` false)
each epoch prints one line instead. ``benchmarks/lightning_overhead.py`` measures the remaining
cost against a bare PyTorch loop.

``training.devices`` (per machine) and ``num_nodes`` train data-parallel with Lightning's DDP:
each process takes its share of the windows (``WindowBatches``), gradients are averaged, and
validation gathers every process's share of the users, so all of them take the same
early-stopping decision (see ``seqrec.training.distributed`` for who writes the run folder).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from safetensors.torch import load_model
from torch import nn

from seqrec.config import TrainingConfig
from seqrec.data.corpus import Sequences
from seqrec.errors import ConfigError, RunFolderError
from seqrec.evaluation.evaluator import Evaluator
from seqrec.training.callbacks import (
    EpochLog,
    LastCheckpoint,
    ReleaseFreedMemory,
    ThrottledProgressBar,
    Validation,
)
from seqrec.training.data import WindowDataModule
from seqrec.training.distributed import external_world_size, writes_run_folder
from seqrec.training.module import SeqRecModule
from seqrec.training.pruning import ValidationListener, ValidationReport

LAST_CHECKPOINT = "last.ckpt"
BEST_WEIGHTS = "best.safetensors"
HISTORY = "history.csv"


def available_accelerators() -> list[str]:
    """The ``training.accelerator`` values this machine can run: auto and cpu, plus what exists."""
    found = ["auto", "cpu"]
    if torch.cuda.is_available():
        found += ["gpu", "cuda"]
    if torch.backends.mps.is_available():
        found += ["mps"] if "gpu" in found else ["gpu", "mps"]
    return found


def check_training(cfg: TrainingConfig) -> None:
    """What the Trainer needs from this machine, checked before a run folder is made."""
    found = available_accelerators()
    if cfg.accelerator not in found:
        raise ConfigError(
            f"training.accelerator: {cfg.accelerator!r} is not available on this machine; "
            f"available: {', '.join(found)}"
        )
    _check_processes(cfg)
    if cfg.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "training.tensorboard is true but tensorboard is not installed: "
            "pip install 'seqrec[tensorboard]'"
        )


def _check_processes(cfg: TrainingConfig) -> None:
    """GPUs to run on exist, and a torchrun or SLURM launch started one process per device."""
    gpus = torch.cuda.device_count()
    if cfg.accelerator in ("gpu", "cuda") and isinstance(cfg.devices, int) and cfg.devices > gpus:
        raise ConfigError(f"training.devices: {cfg.devices} GPUs asked for, {gpus} found")
    started = external_world_size()
    wanted = cfg.devices * cfg.num_nodes if isinstance(cfg.devices, int) else None
    if started is not None and wanted is not None and started != wanted:
        raise ConfigError(
            f"training.devices: {cfg.devices} per machine x {cfg.num_nodes} machine(s) "
            f"(training.num_nodes) = {wanted} processes, but the launcher started {started}"
        )


def show_bar(cfg: TrainingConfig) -> bool:
    """A progress bar only when asked for and stdout is a terminal."""
    return cfg.progress_bar and sys.stdout.isatty()


@dataclass(frozen=True)
class FitResult:
    """What training did: per-epoch history rows, the best validation epoch and the wall time."""

    history: list[dict[str, float]]
    best_epoch: int | None
    best_value: float | None
    metric: str
    train_time_s: float
    epochs_run: int
    windows: int

    @classmethod
    def untrained(cls, metric: str) -> FitResult:
        """What a model fitted from counts reports: no epoch, no window, no validation."""
        return cls([], None, None, metric, 0.0, 0, 0)


def _loggers(run_dir: Path, tensorboard: bool) -> list[Logger]:
    """CSV (and TensorBoard) logs under ``logs/``; a resumed session gets its own folder."""
    version = "csv"
    while (run_dir / "logs" / version).exists():
        version = f"csv-{len(list((run_dir / 'logs').glob('csv*'))) + 1}"
    loggers: list[Logger] = [CSVLogger(run_dir, name="logs", version=version)]
    if tensorboard:
        loggers.append(TensorBoardLogger(run_dir, name="logs", version="tensorboard"))
    return loggers


def make_trainer(
    cfg: TrainingConfig, run_dir: Path, callbacks: list, batches_per_epoch: int
) -> L.Trainer:
    """The Trainer every run uses (also what the overhead benchmark times)."""
    callbacks = list(callbacks)
    if cfg.release_memory_every:
        callbacks.append(ReleaseFreedMemory(cfg.release_memory_every))
    bar = show_bar(cfg)
    if bar:
        callbacks.append(ThrottledProgressBar())
    return L.Trainer(
        max_epochs=-1 if cfg.max_steps else cfg.epochs,
        max_steps=cfg.max_steps or -1,
        max_time=None if cfg.max_minutes is None else timedelta(minutes=cfg.max_minutes),
        precision=cfg.precision,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        callbacks=callbacks,
        logger=_loggers(run_dir, cfg.tensorboard),
        gradient_clip_val=cfg.clip_grad_norm,
        enable_progress_bar=bar,
        enable_model_summary=False,
        log_every_n_steps=min(50, batches_per_epoch),
        num_sanity_val_steps=0,
        limit_val_batches=0,
        limit_train_batches=cfg.steps_per_epoch or 1.0,
        use_distributed_sampler=False,  # WindowBatches shards by rank itself
        default_root_dir=run_dir,
    )


def fit(
    model: nn.Module,
    train: Sequences,
    validator: Evaluator | None,
    cfg: TrainingConfig,
    run_dir: Path,
    resume: bool = False,
    on_validation: ValidationListener | None = None,
) -> FitResult:
    """Train ``model`` in place and leave the best validation weights in it.

    Without a validator (no validation users), or with ``cfg.eval_every`` 0, the weights of the
    last epoch are kept.
    ``resume`` continues from ``run_dir/checkpoints/last.ckpt`` exactly where it stopped.
    ``on_validation(epoch, value)`` is called after every validation; what it raises stops
    training and propagates (see ``pruning.py``).
    """
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    last, best = ckpt_dir / LAST_CHECKPOINT, ckpt_dir / BEST_WEIGHTS
    if resume and not last.is_file():
        raise RunFolderError(f"{run_dir}: no checkpoint to resume from ({last} is missing)")
    data = WindowDataModule(
        train, model.train_seq_len, cfg.batch_size, cfg.seed,
        cfg.window_step, cfg.dupe_factor, cfg.num_workers,
        with_seen=bool(getattr(model, "uses_seen_items", False)),
        length_buckets=cfg.length_buckets,
        last_item_copy=cfg.last_item_copy,
        prefixes=getattr(model, "train_on_prefixes", False),
        click_labels=getattr(model, "trains_on_click_labels", False) and train.labels is not None,
    )  # fmt: skip
    if writes_run_folder():
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    validation = Validation(
        validator if cfg.eval_every else None, cfg.early_stopping_metric, cfg.eval_every,
        cfg.patience, best, run_dir / HISTORY,
    )  # fmt: skip
    log = EpochLog(validation, run_dir, every_epoch=not show_bar(cfg))
    callbacks = [validation, log, LastCheckpoint(last)]
    if on_validation is not None:
        callbacks.append(ValidationReport(validation, on_validation))
    trainer = make_trainer(cfg, run_dir, callbacks, data.batches_per_epoch())
    per_epoch = data.batches_per_epoch(trainer.world_size)  # each process's share
    if cfg.steps_per_epoch:
        per_epoch = min(per_epoch, cfg.steps_per_epoch)
    trainer.log_every_n_steps = min(50, per_epoch)
    total_steps = cfg.schedule_steps or cfg.max_steps or per_epoch * cfg.epochs
    module = SeqRecModule(model, cfg, total_steps=total_steps)
    trainer.fit(module, datamodule=data, ckpt_path=last if resume else None)
    model.cpu()
    if validation.best_epoch is not None and best.is_file():
        load_model(model, str(best), device="cpu")
    return FitResult(
        history=validation.history,
        best_epoch=validation.best_epoch,
        best_value=validation.best,
        metric=cfg.early_stopping_metric,
        train_time_s=validation.elapsed(),
        epochs_run=trainer.current_epoch,
        windows=len(data.dataset),
    )


def seed_everything(seed: int) -> None:
    """One seed for Python, NumPy and torch (model initialisation, dropout)."""
    L.seed_everything(seed, workers=True, verbose=False)
