"""Validation with early stopping, the best weights, and the resume checkpoint.

``Validation`` runs the ``Evaluator`` on the validation set every ``every`` epochs (and after the
last), keeps the best weights (safetensors, written atomically) and stops after ``patience``
validations without improvement. It also records the training history (loss, metric, wall time)
for the report. ``LastCheckpoint`` writes the full Lightning checkpoint after every epoch, to a
temporary file renamed over the old one, so a crash never leaves a half-written checkpoint. Both
keep their state in the checkpoint, so a resumed run carries on the same history and patience.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, Checkpoint, TQDMProgressBar
from safetensors.torch import save_model

from seqrec.evaluation.evaluator import Evaluator


def atomic_save_model(model: Any, path: Path) -> None:
    """Weights as safetensors, written to a temporary name and renamed into place."""
    tmp = path.with_name(path.name + ".tmp")
    save_model(model, str(tmp))
    os.replace(tmp, path)


class Validation(Callback):
    """Validation metric, best weights and early stopping (higher metric values are better)."""

    def __init__(
        self, evaluator: Evaluator | None, metric: str, every: int, patience: int, best_path: Path
    ) -> None:
        self.evaluator, self.metric, self.every, self.patience = evaluator, metric, every, patience
        self.best_path = best_path
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.history: list[dict[str, float]] = []
        self._elapsed_before = 0.0  # wall time of earlier sessions of a resumed run
        self._session_start = time.perf_counter()
        self._epoch_start = self._session_start

    @property
    def state_key(self) -> str:
        return "seqrec.Validation"

    def elapsed(self) -> float:
        return self._elapsed_before + time.perf_counter() - self._session_start

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._session_start = time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.wait >= self.patience:  # resuming a run that had already stopped early
            trainer.should_stop = True

    def _due(self, trainer: L.Trainer) -> bool:
        epoch = trainer.current_epoch + 1
        last_step = 0 < trainer.max_steps <= trainer.global_step
        return epoch % self.every == 0 or epoch == trainer.max_epochs or last_step

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row = {
            "epoch": trainer.current_epoch + 1,
            "train_loss": pl_module.epoch_loss(),
            "train_s": time.perf_counter() - self._epoch_start,  # training steps only
        }
        if self.evaluator is not None and self._due(trainer):
            result = self.evaluator.evaluate(pl_module.model, device=pl_module.device)
            value = float(result[self.metric])
            row[f"valid_{self.metric}"] = value
            pl_module.log(f"valid_{self.metric}", value, prog_bar=True)
            self._update(trainer, pl_module, value)
        row["time_s"] = self.elapsed()
        self.history.append(row)

    def _update(self, trainer: L.Trainer, pl_module: L.LightningModule, value: float) -> None:
        if self.best is None or value > self.best:
            self.best, self.best_epoch, self.wait = value, trainer.current_epoch + 1, 0
            if trainer.is_global_zero:
                atomic_save_model(pl_module.model, self.best_path)
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "history": list(self.history),
            "elapsed": self.elapsed(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best, self.best_epoch = state_dict["best"], state_dict["best_epoch"]
        self.wait, self.history = state_dict["wait"], list(state_dict["history"])
        self._elapsed_before = state_dict["elapsed"]
        self._session_start = time.perf_counter()


class LastCheckpoint(Checkpoint):
    """The full training state after every epoch at ``path``, replaced atomically.

    A ``Checkpoint`` subclass, so Lightning runs it after the other epoch-end hooks and the saved
    state includes this epoch's validation and early-stopping decision.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def state_key(self) -> str:
        return "seqrec.LastCheckpoint"

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        trainer.save_checkpoint(tmp, weights_only=False)
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
        trainer.strategy.barrier()


class ThrottledProgressBar(TQDMProgressBar):
    """Redraws at most every ``interval`` seconds and at the end of the epoch.

    A redraw (metrics, logger version, terminal write) costs milliseconds: drawn every few steps it
    slowed small models by several percent; drawn by time it costs under one.
    """

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__(refresh_rate=1)
        self.interval = interval
        self._last_draw = 0.0

    def _should_update(self, current: int, total: int | float) -> bool:
        now = time.monotonic()
        if current == total or now - self._last_draw >= self.interval:
            self._last_draw = now
            return True
        return False
