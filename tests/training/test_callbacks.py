"""Validation callback: when it validates, which weights it keeps, when it stops."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from safetensors.torch import load_file
from torch import nn

from seqrec.training.callbacks import Validation


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


def test_state_round_trip_keeps_patience_and_history(tmp_path):
    callback, _, _ = _run([0.3, 0.2], every=1, patience=5, tmp_path=tmp_path, max_epochs=2)
    other = Validation(None, "NDCG@10", 1, 5, tmp_path / "b")
    other.load_state_dict(callback.state_dict())
    assert (other.best, other.best_epoch, other.wait) == (0.3, 1, 1)
    assert other.history == callback.history
    assert other.elapsed() >= callback.history[-1]["time_s"]
