"""Validation callback: when it validates, which weights it keeps, when it stops."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from seqrec.config import TrainingConfig
from seqrec.errors import ConfigError, DivergedError
from seqrec.training.callbacks import EpochLog, Validation, peak_rss_mib
from seqrec.training.fit import check_training, show_bar


class ScriptedEvaluator:
    """Returns the next scripted metric value at each call."""

    def __init__(self, values: list[float]) -> None:
        self.values = iter(values)

    def evaluate(self, model: nn.Module, device: str = "cpu") -> dict[str, float]:
        return {"NDCG@10": next(self.values)}


def _run(values: list[float], every: int, patience: int, tmp_path, max_epochs: int = 10):
    callback = Validation(ScriptedEvaluator(values), "NDCG@10", every, patience, tmp_path / "b")
    trainer = SimpleNamespace(current_epoch=0, max_epochs=max_epochs, max_steps=-1, global_step=0,
                              is_global_zero=True,
                              should_stop=False)  # fmt: skip
    model = nn.Linear(2, 1)
    module = SimpleNamespace(model=model, device="cpu", epoch_loss=lambda: 1.0,
                             log=lambda *args, **kwargs: None)  # fmt: skip
    saved = {}
    for epoch in range(max_epochs):
        trainer.current_epoch = epoch
        with torch.no_grad():
            model.weight.fill_(epoch)  # weights that tell which epoch they come from
        callback.on_train_epoch_end(trainer, module)
        if callback.best_epoch == epoch + 1:
            saved[epoch + 1] = load_file(tmp_path / "b")["weight"][0, 0].item()
        if trainer.should_stop:
            break
    return callback, epoch + 1, saved


def test_stops_after_patience_validations_without_improvement(tmp_path):
    callback, stopped_at, saved = _run([0.1, 0.3, 0.2, 0.25, 0.29, 0.5], 1, 3, tmp_path)
    assert stopped_at == 5
    assert (callback.best, callback.best_epoch) == (0.3, 2)
    assert saved[2] == 1.0  # the best file holds the weights of epoch 2
    assert [row["epoch"] for row in callback.history] == [1, 2, 3, 4, 5]


def test_validates_every_n_epochs_and_after_the_last(tmp_path):
    callback, stopped_at, _ = _run([0.1, 0.2, 0.3], every=3, patience=5, tmp_path=tmp_path,
                                   max_epochs=7)  # fmt: skip
    assert stopped_at == 7
    validated = [row["epoch"] for row in callback.history if "valid_NDCG@10" in row]
    assert validated == [3, 6, 7]
    assert callback.best_epoch == 7


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_peak_rss_is_the_kernels_high_water_mark_in_mib():
    status = Path("/proc/self/status").read_text()
    high_water_kib = int(
        next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]
    )
    assert peak_rss_mib() == pytest.approx(high_water_kib / 1024, rel=0.05)


def test_every_history_row_records_the_peak_rss(tmp_path, monkeypatch):
    peaks = iter([100.0, 250.0])
    monkeypatch.setattr("seqrec.training.callbacks.peak_rss_mib", lambda: next(peaks))
    callback, _, _ = _run([0.1, 0.2], every=1, patience=5, tmp_path=tmp_path, max_epochs=2)
    assert [row["peak_rss_mib"] for row in callback.history] == [100.0, 250.0]
    assert callback.columns[-1] == "peak_rss_mib"


def test_state_round_trip_keeps_patience_and_history(tmp_path):
    callback, _, _ = _run([0.3, 0.2], every=1, patience=5, tmp_path=tmp_path, max_epochs=2)
    other = Validation(None, "NDCG@10", 1, 5, tmp_path / "b")
    other.load_state_dict(callback.state_dict())
    assert (other.best, other.best_epoch, other.wait) == (0.3, 1, 1)
    assert other.history == callback.history
    assert other.elapsed() >= callback.history[-1]["time_s"]


# ---------------------------------------------------------------- the per-epoch log


def test_epoch_log_lines(tmp_path):
    callback, _, _ = _run([0.1, 0.3, 0.2], every=2, patience=5, tmp_path=tmp_path, max_epochs=6)
    callback.history[:4] = [
        {"epoch": 1, "train_loss": 5.12341, "train_s": 9.0, "time_s": 10.0},
        {"epoch": 2, "train_loss": 4.5, "train_s": 9.0, "valid_NDCG@10": 0.1, "time_s": 22.0},
        {"epoch": 3, "train_loss": 4.0, "train_s": 9.0, "time_s": 40.0},
        {"epoch": 4, "train_loss": 3.0, "train_s": 9.0, "valid_NDCG@10": 0.05, "time_s": 60.0},
    ]
    callback.best, callback.best_epoch = 0.1, 2
    log = EpochLog(callback, tmp_path, write=lambda line: None)
    lines = [log.line(row, 30) for row in callback.history[:4]]
    assert lines[0] == "epoch 1/30  loss 5.1234  10.0 s  ETA 5 min"
    assert (
        lines[1]
        == "epoch 2/30  loss 4.5000  valid NDCG@10 0.1000 (best 0.1000 @ 2)  12.0 s  ETA 5 min"
    )
    assert lines[2] == "epoch 3/30  loss 4.0000  18.0 s  ETA 6 min"  # 40 s / 3 epochs x 27
    assert lines[3].endswith("valid NDCG@10 0.0500 (best 0.1000 @ 2)  20.0 s  ETA 6 min")
    assert log.line({"epoch": 30, "train_loss": 1.0, "time_s": 900.0}, 30).endswith("s")  # no ETA


def test_epoch_log_is_printed_when_there_is_no_bar(tmp_path):
    printed = []
    callback = Validation(ScriptedEvaluator([0.2]), "NDCG@10", 1, 5, tmp_path / "b")
    log = EpochLog(callback, tmp_path, write=printed.append)
    trainer = SimpleNamespace(current_epoch=0, max_epochs=2, max_steps=-1, global_step=0,
                              is_global_zero=True, should_stop=False,
                              num_training_batches=7)  # fmt: skip
    module = SimpleNamespace(model=nn.Linear(2, 1), device="cpu", epoch_loss=lambda: 2.0,
                             log=lambda *args, **kwargs: None)  # fmt: skip
    log.on_train_start(trainer, module)
    callback.on_train_epoch_end(trainer, module)
    log.on_train_epoch_end(trainer, module)
    assert printed[0] == f"training for at most 2 epochs (7 batches each); run folder: {tmp_path}"
    assert printed[1].startswith("epoch 1/2  loss 2.0000  valid NDCG@10 0.2000 (best 0.2000 @ 1)")
    quiet = EpochLog(callback, tmp_path, every_epoch=False, write=printed.append)
    quiet.on_train_epoch_end(trainer, module)
    assert len(printed) == 2


def test_a_non_finite_loss_stops_with_a_clear_error(tmp_path):
    callback = Validation(None, "NDCG@10", 1, 5, tmp_path / "b")
    trainer = SimpleNamespace(
        current_epoch=0, max_epochs=2, max_steps=-1, global_step=0, is_global_zero=True
    )
    module = SimpleNamespace(epoch_loss=lambda: float("nan"))
    with pytest.raises(DivergedError, match=r"the training loss is nan in epoch 1"):
        callback.on_train_epoch_end(trainer, module)


@pytest.mark.parametrize(("tty", "asked", "bar"), [(True, True, True), (False, True, False),
                                                   (True, False, False)])  # fmt: skip
def test_the_bar_only_on_a_terminal(monkeypatch, tty, asked, bar):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    assert show_bar(TrainingConfig(progress_bar=asked)) is bar


def test_accelerators_are_checked_against_the_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        ConfigError, match=r"'gpu' is not available on this machine; available: auto, cpu"
    ):
        check_training(TrainingConfig(accelerator="gpu"))
    check_training(TrainingConfig(accelerator="cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    check_training(TrainingConfig(accelerator="gpu"))
    with pytest.raises(ConfigError, match=r"^training\.devices: 2 GPUs asked for, 1 found$"):
        check_training(TrainingConfig(accelerator="gpu", devices=2))
