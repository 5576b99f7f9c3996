"""Who writes the run folder and which folder each process names, from the launch environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seqrec.config import TrainingConfig
from seqrec.errors import ConfigError
from seqrec.training.distributed import (
    RUN_DIR_ENV,
    agreed_run_dir,
    handed_on,
    writes_run_folder,
)
from seqrec.training.fit import check_training

LAUNCH_VARIABLES = (
    "RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
    "TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "SLURM_JOB_NAME", "SLURM_PROCID", "SLURM_JOB_ID",
    "SLURM_STEP_ID", RUN_DIR_ENV,
)  # fmt: skip


@pytest.fixture(autouse=True)
def no_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _torchrun(monkeypatch: pytest.MonkeyPatch, rank: int, world: int, run_id: str) -> None:
    for name, value in {
        "RANK": rank, "LOCAL_RANK": rank, "GROUP_RANK": 0, "WORLD_SIZE": world,
        "LOCAL_WORLD_SIZE": world, "TORCHELASTIC_RUN_ID": run_id,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, str(value))


def test_one_process_writes_and_chooses_its_own_folder():
    assert writes_run_folder()
    assert agreed_run_dir("runs/sasrec-ml-100k") is None


def test_a_process_lightning_started_takes_the_folder_handed_on(monkeypatch):
    with handed_on(Path("runs/sasrec-ml-100k-20260101-000000-abcd")):
        monkeypatch.setenv("LOCAL_RANK", "1")  # as Lightning's launcher starts it
        assert not writes_run_folder()
        assert agreed_run_dir("runs/x") == Path("runs/sasrec-ml-100k-20260101-000000-abcd")
    assert RUN_DIR_ENV not in os.environ


def test_torchrun_processes_name_the_folder_after_the_run_id(monkeypatch):
    names = []
    for rank in (0, 1):
        _torchrun(monkeypatch, rank, 2, "3f2a9c1e-77aa-4b1c")
        names.append(agreed_run_dir("runs/sasrec-ml-100k"))
        assert writes_run_folder() == (rank == 0)
    assert names == [Path("runs/sasrec-ml-100k-torchrun-3f2a9c1e")] * 2


def test_torchrun_without_a_run_id_asks_for_output_dir(monkeypatch):
    _torchrun(monkeypatch, 1, 2, "none")
    with pytest.raises(ConfigError, match=r"^output\.dir: the processes torchrun started"):
        agreed_run_dir("runs/sasrec-ml-100k")


def test_slurm_tasks_name_the_folder_after_job_and_step(monkeypatch):
    for name, value in {
        "SLURM_NTASKS": "8", "SLURM_JOB_NAME": "sasrec", "SLURM_PROCID": "5",
        "SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert not writes_run_folder()
    assert agreed_run_dir("runs/sasrec-ml-100k") == Path("runs/sasrec-ml-100k-slurm4242.0")


def test_processes_started_must_match_devices_times_nodes(monkeypatch):
    _torchrun(monkeypatch, 0, 4, "abc")
    check_training(TrainingConfig(accelerator="cpu", devices=2, num_nodes=2))
    expected = r"^training\.devices: 2 per machine x 1 .* = 2 processes, .* started 4$"
    with pytest.raises(ConfigError, match=expected):
        check_training(TrainingConfig(accelerator="cpu", devices=2))
