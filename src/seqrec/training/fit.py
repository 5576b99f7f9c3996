"""Train one model with Lightning: the Trainer set-up every run shares.

Settings that cost time without telling the user anything are off: no sanity validation loop, no
model summary, no per-step logging (the loss is logged once per epoch), and the progress bar
redraws once a second rather than every step. ``benchmarks/lightning_overhead.py`` measures the
remaining cost against a bare PyTorch loop.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from safetensors.torch import load_model
from torch import nn

from seqrec.config import TrainingConfig
from seqrec.data.corpus import Sequences
from seqrec.evaluation.evaluator import Evaluator
from seqrec.training.callbacks import LastCheckpoint, ThrottledProgressBar, Validation
from seqrec.training.data import WindowDataModule
from seqrec.training.module import SeqRecModule

LAST_CHECKPOINT = "last.ckpt"
BEST_WEIGHTS = "best.safetensors"


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


def _loggers(run_dir: Path, tensorboard: bool) -> list[Logger]:
    """CSV (and TensorBoard) logs under ``logs/``; a resumed session gets its own folder."""
    version = "csv"
    while (run_dir / "logs" / version).exists():
        version = f"csv-{len(list((run_dir / 'logs').glob('csv*'))) + 1}"
    loggers: list[Logger] = [CSVLogger(run_dir, name="logs", version=version)]
    if tensorboard:
        if importlib.util.find_spec("tensorboard") is None:
            raise RuntimeError(
                "training.tensorboard is true but tensorboard is not installed: "
                "pip install 'seqrec[tensorboard]'"
            )
        loggers.append(TensorBoardLogger(run_dir, name="logs", version="tensorboard"))
    return loggers


def make_trainer(
    cfg: TrainingConfig, run_dir: Path, callbacks: list, batches_per_epoch: int
) -> L.Trainer:
    """The Trainer every run uses (also what the overhead benchmark times)."""
    callbacks = list(callbacks)
    if cfg.progress_bar:
        callbacks.append(ThrottledProgressBar())
    return L.Trainer(
        max_epochs=cfg.epochs,
        accelerator=cfg.accelerator,
        devices="auto",
        callbacks=callbacks,
        logger=_loggers(run_dir, cfg.tensorboard),
        gradient_clip_val=cfg.clip_grad_norm,
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,
        log_every_n_steps=min(50, batches_per_epoch),
        num_sanity_val_steps=0,
        limit_val_batches=0,
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
) -> FitResult:
    """Train ``model`` in place and leave the best validation weights in it.

    Without a validator (no validation users) the weights of the last epoch are kept.
    ``resume`` continues from ``run_dir/checkpoints/last.ckpt`` exactly where it stopped.
    """
    ckpt_dir = Path(run_dir) / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    last, best = ckpt_dir / LAST_CHECKPOINT, ckpt_dir / BEST_WEIGHTS
    if resume and not last.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {last}")
    data = WindowDataModule(
        train, model.train_seq_len, cfg.batch_size, cfg.seed,
        cfg.window_step, cfg.dupe_factor, cfg.num_workers,
        prefixes=getattr(model, "train_on_prefixes", False),
    )  # fmt: skip
    validation = Validation(
        validator, cfg.early_stopping_metric, cfg.eval_every, cfg.patience, best
    )
    per_epoch = data.batches_per_epoch()
    trainer = make_trainer(cfg, Path(run_dir), [validation, LastCheckpoint(last)], per_epoch)
    per_epoch = data.batches_per_epoch(trainer.world_size)
    module = SeqRecModule(model, cfg, total_steps=per_epoch * cfg.epochs)
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
