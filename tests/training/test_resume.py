"""Exact resume: a run interrupted after a checkpoint and resumed ends on the same weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_run import tiny_config

from seqrec.pipeline import resume, train
from seqrec.training.callbacks import LastCheckpoint


def _last_state(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return checkpoint["state_dict"]


def test_resume_continues_to_the_same_final_weights(tmp_path, tiny_data, monkeypatch):
    # dropout (global RNG), input masking (generator), several windows per user and two copies
    settings = {"epochs": 4, "window_step": 3, "dupe_factor": 2, "warmup_steps": 3, "patience": 9}
    whole = train(tiny_config(tiny_data, tmp_path / "whole", **settings))

    original = LastCheckpoint.on_train_epoch_end

    def crash_after_second_epoch(self, trainer, pl_module):
        original(self, trainer, pl_module)
        if trainer.current_epoch == 1:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(LastCheckpoint, "on_train_epoch_end", crash_after_second_epoch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config(tiny_data, tmp_path / "resumed", **settings))
    assert torch.load(tmp_path / "resumed/checkpoints/last.ckpt", weights_only=True)["epoch"] == 1
    monkeypatch.setattr(LastCheckpoint, "on_train_epoch_end", original)
    resumed = resume(tmp_path / "resumed")

    expected, actual = _last_state(tmp_path / "whole"), _last_state(tmp_path / "resumed")
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    for name, tensor in whole.model.state_dict().items():  # the best weights, loaded at the end
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    losses = [[row["train_loss"] for row in run.fit.history] for run in (whole, resumed)]
    assert len(losses[0]) == 4
    assert losses[0] == losses[1]
    assert resumed.fit.best_epoch == whole.fit.best_epoch
