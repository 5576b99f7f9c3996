"""``seqrec`` as a script, for the data-parallel tests: torchrun and Lightning's launcher start it
like the command. With ``CRASH_AFTER_EPOCH=k`` every process stops after epoch ``k``'s checkpoint,
as a crash would, so that the run can be resumed."""

import os
import sys

from seqrec.cli import main
from seqrec.training.callbacks import LastCheckpoint


def crash_after(epoch: int) -> None:
    original = LastCheckpoint.on_train_epoch_end

    def crash(self, trainer, pl_module) -> None:
        original(self, trainer, pl_module)
        if trainer.current_epoch + 1 == epoch:
            raise RuntimeError(f"simulated crash after epoch {epoch}")

    LastCheckpoint.on_train_epoch_end = crash


if __name__ == "__main__":
    if os.environ.get("CRASH_AFTER_EPOCH"):
        crash_after(int(os.environ["CRASH_AFTER_EPOCH"]))
    sys.exit(main())
