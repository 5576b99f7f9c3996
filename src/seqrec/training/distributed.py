"""The processes of one data-parallel run, as they see each other before Lightning joins them.

Every process of a run executes the whole ``seqrec train`` command: the first one starts the
others through Lightning's launcher (``training.devices`` > 1; they run the same command with
``LOCAL_RANK`` set), or torchrun or SLURM's ``srun`` start them all. Each builds the same data
and model from the same config and seed; only the first process of the first machine (global
rank 0) writes the run folder, and all of them must name the same one, since every process reads
the best weights back from it after training and a resumed run's checkpoint from it. A folder
named in ``output.dir`` is shared as it is. A default name (``runs/<model>-<data>-<time>-<hex>``)
is chosen once: by the first process, which hands it to the processes Lightning starts through
the environment (``SEQREC_RUN_DIR``), or, when torchrun or SLURM started every process at once,
taken from the launch's id, which they share (``SLURM_JOB_ID`` and step, torchrun's run id).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

from seqrec.errors import ConfigError

RUN_DIR_ENV = "SEQREC_RUN_DIR"
# a launcher sets these; any of them above 0 means this process is not global rank 0
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK")


def writes_run_folder() -> bool:
    """True in the process that writes the run folder: global rank 0, or the only process."""
    ranks = [os.environ.get(name, "0") for name in _RANK_VARIABLES]
    if SLURMEnvironment.detect():
        ranks.append(os.environ.get("SLURM_PROCID", "0"))
    return all(int(rank) == 0 for rank in ranks)


def external_world_size() -> int | None:
    """Processes torchrun or SLURM started for this run (None: not started by either)."""
    if TorchElasticEnvironment.detect():
        return int(os.environ["WORLD_SIZE"])
    if SLURMEnvironment.detect():
        return int(os.environ["SLURM_NTASKS"])
    return None


def launch_id() -> str | None:
    """An id every process of one torchrun or SLURM launch shares, for a default folder name.

    torchrun without ``--rdzv-id`` (or ``--standalone``) names every launch ``none``: no id.
    """
    if SLURMEnvironment.detect():
        step = os.environ.get("SLURM_STEP_ID")
        return f"slurm{os.environ['SLURM_JOB_ID']}" + (f".{step}" if step else "")
    if TorchElasticEnvironment.detect():
        run_id = os.environ.get("TORCHELASTIC_RUN_ID", "none")
        return None if run_id == "none" else f"torchrun-{run_id[:8]}"
    return None


def agreed_run_dir(default_stem: str) -> Path | None:
    """The default run folder an earlier process chose, or the one this launch's id gives.

    None: this process chooses (it is the first or the only one). ``default_stem`` is
    ``runs/<model>-<data>``.
    """
    if os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    world = external_world_size()
    if world is None or world == 1:
        return None
    shared = launch_id()
    if shared is None:
        raise ConfigError(
            "output.dir: the processes torchrun started share no run id to name a default run "
            "folder after; give output.dir=<folder>, or torchrun --rdzv-id <id> (or --standalone)"
        )
    return Path(f"{default_stem}-{shared}")


@contextmanager
def handed_on(run_dir: Path) -> Iterator[None]:
    """``run_dir`` in the environment while training, for the processes Lightning starts."""
    before = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = before
