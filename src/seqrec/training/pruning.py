"""Hand each validation value to the caller while training runs (e.g. to prune a tuning trial).

``seqrec tune`` reports every validation value to Optuna and stops a trial whose curve falls
behind the other trials'. Training stays free of Optuna: ``ValidationReport`` only calls a
function with ``(epoch, value)``; that function may raise (``optuna.TrialPruned``) to stop.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
from lightning.pytorch.callbacks import Callback

from seqrec.training.callbacks import Validation

ValidationListener = Callable[[int, float], None]


class ValidationReport(Callback):
    """Calls ``report(epoch, value)`` after each epoch that ``validation`` validated.

    It must come after ``validation`` in the Trainer's callbacks (``fit`` puts it there), so that
    it reads this epoch's value. An exception raised by ``report`` stops training and propagates
    out of ``fit``; the run folder is then left without test results. Epochs count from 1.
    """

    def __init__(self, validation: Validation, report: ValidationListener) -> None:
        self.validation, self.report = validation, report

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.validation.history:
            return
        row = self.validation.history[-1]
        key = f"valid_{self.validation.metric}"
        if row["epoch"] == trainer.current_epoch + 1 and key in row:
            self.report(int(row["epoch"]), float(row[key]))
