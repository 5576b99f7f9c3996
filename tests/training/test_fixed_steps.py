"""The BERT4Rec authors' way to train the final model: validation items trained on, a fixed
number of steps, no early stopping; and bfloat16 training with float32 evaluation."""

from __future__ import annotations

from typing import ClassVar

import polars as pl
import pytest
import torch
from tiny_run import Tiny, TinyConfig, tiny_config

import seqrec.models as models
from seqrec.config import config_from_dict, save_config
from seqrec.errors import ConfigError
from seqrec.pipeline import train
from seqrec.training.steps_from import best_step


def _validated_run(folder, dataset, values, metric="NDCG@10"):
    """A run folder as a validation run leaves it: its config and history (4 steps an epoch)."""
    folder.mkdir()
    config = config_from_dict({"data": {"dataset": str(dataset)}, "model": {"name": "sasrec"}})
    save_config(config, folder / "config.yaml")
    rows = [f"{e},{4 * e},1.0,{v},{e}.0" for e, v in enumerate(values, 1)]
    header = f"epoch,step,train_loss,valid_{metric},time_s"
    (folder / "history.csv").write_text("\n".join([header, *rows]) + "\n")
    return folder


def test_steps_from_takes_the_steps_of_the_first_best_validation(tmp_path):
    run = _validated_run(tmp_path / "valid-run", "data.tsv", ["0.1", "", "0.3", "0.3", "0.2"])
    best = best_step(run, "data.tsv")
    assert (best.epoch, best.step, best.value) == (3, 12, 0.3)  # the first of the equal bests
    assert best.schedule_steps == 50 * 4  # its default 50 epochs of 4 steps


def test_steps_from_refuses_another_data_set_a_run_without_validation_and_a_contradiction(
    tiny_data, tmp_path
):
    run = _validated_run(tmp_path / "valid-run", tiny_data, ["0.1", "0.2"])
    with pytest.raises(ConfigError, match=r"trained on .*tiny.tsv.*, this one on"):
        best_step(run, str(tmp_path / "data.tsv"))
    unvalidated = _validated_run(tmp_path / "no-valid", tiny_data, ["", ""])
    with pytest.raises(ConfigError, match="no validation with its step count"):
        best_step(unvalidated, str(tiny_data))
    seeds = tmp_path / "seeds-run"
    seeds.mkdir()
    raw = {"data": {"dataset": str(tiny_data)}, "model": {"name": "sasrec"}}
    save_config(config_from_dict(raw | {"training": {"seeds": [1, 2]}}), seeds / "config.yaml")
    with pytest.raises(ConfigError, match="several seeds; give one seed's folder"):
        best_step(seeds, str(tiny_data))
    config = tiny_config(tiny_data, tmp_path / "final", steps_from=str(run), max_steps=3)
    with pytest.raises(ConfigError, match=r"max_steps 3 and training.steps_from .* disagree"):
        train(config)
    assert not (tmp_path / "final").exists()  # refused before anything is written


def test_a_final_run_trains_the_steps_of_the_validation_runs_best(tiny_data, tmp_path):
    valid_run = train(tiny_config(tiny_data, tmp_path / "valid-run", epochs=4))
    best = best_step(valid_run.dir, str(tiny_data))
    config = tiny_config(tiny_data, tmp_path / "final", epochs=50, steps_from=str(valid_run.dir))
    config["data"]["split"] = {"train_on_validation": True}
    final = train(config)
    assert final.config.training.max_steps == best.step
    assert pl.read_csv(final.dir / "history.csv")["step"][-1] == best.step
    report = (final.dir / "report.md").read_text()
    assert f"{best.step:,} of {best.step:,} steps" in report
    assert f"best validation of `{valid_run.dir}` (epoch {best.epoch}," in report
    # on the validation run's learning-rate path: 4 epochs of its steps, not decaying to 0 early
    per_epoch = int(pl.read_csv(valid_run.dir / "history.csv")["step"][0])
    assert final.config.training.schedule_steps == best.schedule_steps == 4 * per_epoch
    assert f"decaying over {4 * per_epoch:,} steps (that run's learning-rate path)" in report
    expected = 0.01 * (4 * per_epoch - best.step) / (4 * per_epoch)
    assert _last_lr(final.dir) == pytest.approx(expected)


def _last_lr(run_dir):
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    return checkpoint["lr_schedulers"][0]["_last_lr"][0]


def test_schedule_steps_sets_the_length_of_the_learning_rate_decay(tiny_data, tmp_path):
    own = train(tiny_config(tiny_data, tmp_path / "own", max_steps=4, lr=0.01, eval_every=0))
    assert _last_lr(own.dir) == pytest.approx(0.0)  # decayed to 0 at its own last step
    config = tiny_config(
        tiny_data, tmp_path / "longer", max_steps=4, schedule_steps=16, lr=0.01, eval_every=0
    )
    longer = train(config)
    assert _last_lr(longer.dir) == pytest.approx(0.01 * 12 / 16)  # a quarter of the way down
    assert (
        "decaying over 16 steps (training.schedule_steps)" in (longer.dir / "report.md").read_text()
    )
    short = tiny_config(tiny_data, tmp_path / "short", max_steps=4, schedule_steps=3)
    with pytest.raises(ConfigError, match="schedule_steps 3 is shorter than the run's 4 steps"):
        train(short)


def test_training_on_validation_runs_a_fixed_number_of_steps(tiny_data, tmp_path):
    config = tiny_config(tiny_data, tmp_path / "run", epochs=50, max_steps=7, batch_size=8)
    config["data"]["split"] = {"train_on_validation": True}
    run = train(config)
    assert run.fit.best_epoch is None  # no validation set: the last weights are kept
    history = pl.read_csv(run.dir / "history.csv")
    assert not any(c.startswith("valid_") for c in history.columns)
    # 30 windows in batches of 8: 4 steps per epoch, 7 steps end in the second epoch
    assert run.fit.epochs_run == 2
    assert "trained on the validation items too" in (run.dir / "report.md").read_text()
    assert len(run.prepared().split.valid) == 0


def test_eval_every_zero_never_validates_and_keeps_the_last_weights(tiny_data, tmp_path):
    config = tiny_config(tiny_data, tmp_path / "run", epochs=3, eval_every=0)
    run = train(config)
    assert run.fit.best_epoch is None and run.fit.epochs_run == 3
    history = pl.read_csv(run.dir / "history.csv")
    assert history.height == 3 and not any(c.startswith("valid_") for c in history.columns)
    assert not (run.dir / "checkpoints" / "best.safetensors").exists()
    last = torch.load(run.dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    for name, value in run.model.state_dict().items():
        assert torch.equal(value, last[f"model.{name}"]), name
    assert "no validation (training.eval_every 0)" in (run.dir / "report.md").read_text()
    assert len(run.prepared().split.valid) > 0  # the split still has its validation users


class AutocastProbe(Tiny):
    """Records whether bfloat16 autocast is on when it trains and when it is evaluated."""

    seen: ClassVar[dict[str, set[bool]]] = {"train": set(), "eval": set()}

    def calculate_loss(self, batch, generator=None):
        self.seen["train"].add(torch.is_autocast_enabled("cpu"))
        return super().calculate_loss(batch, generator)

    def full_sort_predict(self, batch):
        self.seen["eval"].add(torch.is_autocast_enabled("cpu"))
        return super().full_sort_predict(batch)


def test_bf16_mixed_trains_under_autocast_and_evaluates_in_float32(
    tiny_data, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(models.MODELS, "probe", (AutocastProbe, TinyConfig))
    config = tiny_config(tiny_data, tmp_path / "run", epochs=2, precision="bf16-mixed")
    config["model"]["name"] = "probe"
    run = train(config)
    assert AutocastProbe.seen == {"train": {True}, "eval": {False}}
    assert run.results["full"].per_user["NDCG@10"].dtype.name.startswith("float")


def test_a_time_limit_ends_training_and_validates_where_it_stopped(tiny_data, tmp_path):
    config = tiny_config(tiny_data, tmp_path / "run", epochs=1000, eval_every=500)
    config["training"]["max_minutes"] = 0.02  # 1.2 s: a few epochs of the tiny model
    run = train(config)
    assert 1 <= run.fit.epochs_run < 1000
    history = pl.read_csv(run.dir / "history.csv")
    assert history["valid_NDCG@10"].drop_nulls().len() == 1  # the epoch the limit ended
    assert run.fit.best_epoch == history["epoch"].max()


def test_steps_per_epoch_cuts_epochs_short_with_a_fresh_shuffle_each(tiny_data, tmp_path):
    config = tiny_config(tiny_data, tmp_path / "run", epochs=3, batch_size=4, steps_per_epoch=2)
    run = train(config)
    history = pl.read_csv(run.dir / "history.csv")
    assert history.height == 3 and history["valid_NDCG@10"].drop_nulls().len() == 3
    # 30 windows in batches of 4 would be 8 steps an epoch; the run made 3 x 2
    assert run.fit.epochs_run == 3
    checkpoint = torch.load(run.dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 6
