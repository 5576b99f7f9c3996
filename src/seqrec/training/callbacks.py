"""Validation with early stopping, the best weights, and the resume checkpoint.

``Validation`` runs the ``Evaluator`` on the validation set every ``every`` epochs (and after the
last), keeps the best weights (safetensors, written atomically) and stops after ``patience``
validations without improvement. It also records the training history (loss, metric, wall time, and
the process's peak resident memory so far) for the report, and appends each epoch's row to
``history.csv`` as soon as the epoch ends, so a long run can be followed and a crash keeps its
history. ``LastCheckpoint`` writes the full Lightning checkpoint after every epoch, to a temporary
file renamed over the old one, so a crash never leaves a half-written checkpoint. Both keep their
state in the checkpoint, so a resumed run carries on the same history (``history.csv`` is rewritten
from it, then appended to) and patience. ``EpochLog`` prints one line per epoch, for logs that are
not a terminal.
"""

from __future__ import annotations

import csv
import math
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, Checkpoint, TQDMProgressBar
from safetensors.torch import save_model

from seqrec.errors import DivergedError
from seqrec.evaluation.evaluator import Evaluator
from seqrec.training.allocator import release_freed_memory


def peak_rss_mib() -> float:
    """The largest resident size of this process so far, in MiB (Linux counts KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def atomic_save_model(model: Any, path: Path) -> None:
    """Weights as safetensors, written to a temporary name and renamed into place."""
    tmp = path.with_name(path.name + ".tmp")
    save_model(model, str(tmp))
    os.replace(tmp, path)


class Validation(Callback):
    """Validation metric, best weights and early stopping (higher metric values are better)."""

    def __init__(
        self,
        evaluator: Evaluator | None,
        metric: str,
        every: int,
        patience: int,
        best_path: Path,
        history_path: Path | None = None,
    ) -> None:
        self.evaluator, self.metric, self.every, self.patience = evaluator, metric, every, patience
        self.best_path, self.history_path = best_path, history_path
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

    @property
    def columns(self) -> list[str]:
        """The columns of ``history.csv`` (a row without validation leaves its metric empty).

        A run without a validation set has no metric column at all.
        """
        valid = [] if self.evaluator is None else [f"valid_{self.metric}"]
        return ["epoch", "step", "train_loss", "train_s", *valid, "time_s", "peak_rss_mib"]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.wait >= self.patience:  # resuming a run that had already stopped early
            trainer.should_stop = True
        if self.history_path is not None and trainer.is_global_zero:
            # the history as restored from the checkpoint: a resumed run drops any row written
            # after its checkpoint (a crash between the two) and continues the same file
            tmp = self.history_path.with_name(self.history_path.name + ".tmp")
            with tmp.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, self.columns)
                writer.writeheader()
                writer.writerows(self.history)
            os.replace(tmp, self.history_path)

    def _due(self, trainer: L.Trainer) -> bool:
        epoch = trainer.current_epoch + 1
        last_step = 0 < trainer.max_steps <= trainer.global_step
        # should_stop: the time limit (``max_minutes``) ended training in this epoch
        stopping = bool(getattr(trainer, "should_stop", False))
        return epoch % self.every == 0 or epoch == trainer.max_epochs or last_step or stopping

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row = {
            "epoch": trainer.current_epoch + 1,
            "step": trainer.global_step,  # optimizer steps so far (what steps_from reads)
            "train_loss": pl_module.epoch_loss(),
            "train_s": time.perf_counter() - self._epoch_start,  # training steps only
        }
        if not math.isfinite(row["train_loss"]):
            raise DivergedError(
                f"the training loss is {row['train_loss']} in epoch {row['epoch']}: training "
                "diverged; try a lower training.lr, training.clip_grad_norm, or other model "
                "settings"
            )
        if self.evaluator is not None and self._due(trainer):
            result = self.evaluator.evaluate(pl_module.model, device=pl_module.device)
            value = float(result[self.metric])
            row[f"valid_{self.metric}"] = value
            # every process holds the same value (see Evaluator): the sync changes nothing
            pl_module.log(f"valid_{self.metric}", value, prog_bar=True, sync_dist=True)
            self._update(trainer, pl_module, value)
        row["time_s"] = self.elapsed()
        row["peak_rss_mib"] = peak_rss_mib()  # validation included: it can be the peak
        self.history.append(row)
        if self.history_path is not None and trainer.is_global_zero:
            with self.history_path.open("a", newline="", encoding="utf-8") as handle:
                csv.DictWriter(handle, self.columns).writerow(row)

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


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _print(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def planned_epochs(trainer: L.Trainer) -> int:
    """The epochs a run will train at most: ``max_epochs``, or what ``max_steps`` amounts to."""
    if trainer.max_steps > 0:
        return -(-trainer.max_steps // max(trainer.num_training_batches, 1))
    return trainer.max_epochs


class EpochLog(Callback):
    """One line per epoch: loss, validation metric (and the best so far), epoch time, ETA.

    ``epoch 3/30  loss 5.1234  valid NDCG@10 0.0612 (best 0.0640 @ 2)  12.3 s  ETA 5 min``.
    The ETA assumes every remaining epoch runs (early stopping may end sooner). Lines are
    flushed at once, so a log file on a cluster shows each epoch when it ends. A first line names
    the run folder, and a run that stops on an error or Ctrl-C after an epoch says (on stderr)
    how to resume it; both also with a progress bar (``every_epoch`` False).
    """

    def __init__(
        self,
        validation: Validation,
        run_dir: Path,
        every_epoch: bool = True,
        write: Callable[[str], None] = _print,
    ) -> None:
        self.validation, self.run_dir, self.write = validation, run_dir, write
        self.every_epoch = every_epoch  # False: a progress bar shows the epochs
        self._last_time = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        history = self.validation.history
        self._last_time = history[-1]["time_s"] if history else 0.0
        if trainer.is_global_zero:
            start = f"from epoch {len(history) + 1} " if history else ""
            self.write(
                f"training {start}for at most {planned_epochs(trainer)} epochs "
                f"({trainer.num_training_batches} batches each); run folder: {self.run_dir}"
            )

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if trainer.is_global_zero and self.validation.history:
            done = int(self.validation.history[-1]["epoch"])
            why = "interrupted" if isinstance(exception, KeyboardInterrupt) else "stopped"
            print(
                f"seqrec: training {why} after epoch {done}; continue it with: "
                f"seqrec train --resume {self.run_dir}",
                file=sys.stderr, flush=True,
            )  # fmt: skip

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.every_epoch and trainer.is_global_zero and self.validation.history:
            self.write(self.line(self.validation.history[-1], planned_epochs(trainer)))

    def line(self, row: dict[str, float], max_epochs: int) -> str:
        """The log line of one history row (see the class docstring)."""
        v = self.validation
        epoch, seconds = int(row["epoch"]), row["time_s"] - self._last_time
        self._last_time = row["time_s"]
        parts = [f"epoch {epoch}/{max_epochs}", f"loss {row['train_loss']:.4f}"]
        value = row.get(f"valid_{v.metric}")
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            parts.append(f"valid {v.metric} {value:.4f} (best {v.best:.4f} @ {v.best_epoch})")
        parts.append(f"{seconds:.1f} s")
        remaining = max_epochs - epoch
        if remaining > 0:
            parts.append(f"ETA {_duration(row['time_s'] / epoch * remaining)}")
        return "  ".join(parts)


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


class ReleaseFreedMemory(Callback):
    """Hands the allocator's free pages back to the system after every ``every`` training batches,
    so a peak that fragmentation would grow step by step stays bounded (see ``allocator.py``)."""

    def __init__(self, every: int, release: Callable[[], bool] = release_freed_memory) -> None:
        self.every, self.release = every, release
        self.batches = 0

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self.batches += 1
        if self.batches % self.every == 0:
            self.release()


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
