"""The Python API checks its arguments; a run folder is made only after every check has passed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from tiny_run import tiny_config

from seqrec import pipeline
from seqrec.config import save_config
from seqrec.errors import ArgumentError, ConfigError, DataError, RunFolderError
from seqrec.pipeline import evaluate, load_run, recommend, resume, train
from seqrec.training.callbacks import LastCheckpoint, Validation


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_run import one_thread, register, write_interactions

    root = tmp_path_factory.mktemp("checks")
    with pytest.MonkeyPatch.context() as patch, one_thread():
        register(patch)
        train(tiny_config(write_interactions(root / "tiny.tsv"), root / "run", epochs=1))
    return root / "run"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"history": "123"}, "history: expected a list of item ids, got str '123'"),
        ({"history": 5}, "history: expected a list of item ids, got int"),
        ({"history": {"i1", "i2"}}, "history: expected a list of item ids, got set"),
        ({"history": ["i1", 2.5]}, "history[1]: expected an item id (str or int), got 2.5"),
        ({"history": ["i1", True]}, "history[1]: expected an item id (str or int), got True"),
        ({"history": []}, "history is empty"),
        ({"history": ["i1"], "k": 0}, "k: expected a positive integer, got 0"),
        ({"history": ["i1"], "k": 2.5}, "k: expected a positive integer, got 2.5"),
        ({"history": ["i1"], "k": True}, "k: expected a positive integer, got True"),
        ({"history": ["i1"], "k": "3"}, "k: expected a positive integer, got '3'"),
        ({"history": ["i1"], "exclude_history": "no"}, "exclude_history: expected True or False"),
    ],
)
def test_recommend_checks_its_arguments(run_dir, kwargs, message):
    with pytest.raises(ArgumentError, match=re.escape(message)):
        recommend(run_dir, **kwargs)


def test_api_type_errors_are_type_errors_too(run_dir):
    with pytest.raises(TypeError):
        recommend(run_dir, history="i1")
    with pytest.raises(ArgumentError, match=re.escape("run: expected a folder path")):
        recommend(42, history=["i1"])
    with pytest.raises(ArgumentError, match=re.escape("config: expected a Config, a mapping")):
        train(3.14)
    with pytest.raises(ArgumentError, match=re.escape("protocol: expected a protocol name")):
        evaluate(run_dir, protocol=100)
    with pytest.raises(ConfigError, match=re.escape("unknown protocol 'top5'")):
        evaluate(run_dir, protocol="top5")
    with pytest.raises(ArgumentError, match=re.escape("protocols: expected a non-empty list")):
        pipeline.evaluate_baseline("pop", "x.csv", protocols="full")


def test_recommend_reads_only_the_model_folder(run_dir, tmp_path):
    copy = tmp_path / "run"
    for path in (run_dir / "model").iterdir():
        (copy / "model").mkdir(parents=True, exist_ok=True)
        (copy / "model" / path.name).write_bytes(path.read_bytes())
    (copy / "metrics.json").write_text("{ not json")  # and no config.yaml at all
    assert recommend(copy, ["i1", "i2"], k=3) == recommend(run_dir, ["i1", "i2"], k=3)


def test_metrics_are_read_on_first_use_and_bad_json_names_the_file(run_dir, tmp_path):
    run = load_run(run_dir)
    assert set(run.metrics) == {"full", "uniform10"}
    run.saved_metrics, bad = None, tmp_path / "metrics.json"
    bad.write_text('{"full": ')
    run.dir = tmp_path
    with pytest.raises(ValueError, match=re.escape(f"{bad}: not valid JSON: line 1")):
        _ = run.metrics


def _nothing_new(root: Path, before: set[Path]) -> bool:
    return set(root.rglob("*")) == before


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"training": {"lr": -1.0}}, ConfigError, "training.lr"),
        ({"evaluation": {"batch_size": 0}}, ConfigError, "evaluation.batch_size"),
        ({"evaluation": {"protocols": ["uniform100"]}}, ConfigError, "uniform100"),
        ({"model": {"name": "tiny", "max_len": -1}}, ConfigError, "model.max_len"),
        ({"data": {"dataset": "missing.tsv"}}, ConfigError, "data.dataset"),
        ({"data": {"min_user_interactions": 100}}, DataError, "no interactions left"),
    ],
)
def test_a_failed_start_writes_nothing(tmp_path, tiny_data, change, error, message):
    config = tiny_config(tiny_data, tmp_path / "out" / "run")
    for section, values in change.items():
        config[section] = {**config[section], **values}
    before = set(tmp_path.rglob("*"))
    with pytest.raises(error, match=re.escape(message)):
        train(config)
    assert _nothing_new(tmp_path, before)


def _crash_in_epoch(monkeypatch, epoch: int):
    """Validation raises at the end of ``epoch`` (after appending its row); returns the original."""
    original = Validation.on_train_epoch_end

    def crash(self, trainer, pl_module):
        original(self, trainer, pl_module)
        if trainer.current_epoch + 1 == epoch:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(Validation, "on_train_epoch_end", crash)
    return original


def test_a_crash_before_the_first_checkpoint_removes_the_folders_it_made(
    tmp_path, tiny_data, monkeypatch
):
    _crash_in_epoch(monkeypatch, 1)
    before = set(tmp_path.rglob("*"))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config(tiny_data, tmp_path / "a" / "b" / "run"))
    assert _nothing_new(tmp_path, before)


def test_an_interrupted_run_says_to_resume_and_history_survives(tmp_path, tiny_data, monkeypatch):
    original = _crash_in_epoch(monkeypatch, 3)
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config(tiny_data, run_dir, epochs=4, patience=9))
    # epoch 3's row was appended, but its checkpoint was never written (the crash came first)
    assert pl.read_csv(run_dir / "history.csv")["epoch"].to_list() == [1, 2, 3]
    message = f"continue it with: seqrec train --resume {run_dir}"
    with pytest.raises(RunFolderError, match=re.escape(message)):
        load_run(run_dir)
    with pytest.raises(RunFolderError, match=re.escape("already holds a run; continue it with")):
        train(tiny_config(tiny_data, run_dir))
    monkeypatch.setattr(Validation, "on_train_epoch_end", original)
    run = resume(run_dir)
    history = pl.read_csv(run_dir / "history.csv")
    assert history["epoch"].to_list() == [1, 2, 3, 4]  # epoch 3 once, from the resumed session
    assert history["train_loss"].to_list() == [row["train_loss"] for row in run.fit.history]


def test_history_is_on_disk_after_every_epoch(tmp_path, tiny_data, monkeypatch):
    seen = []
    original = LastCheckpoint.on_train_epoch_end

    def look(self, trainer, pl_module):
        seen.append(len(pl.read_csv(tmp_path / "run" / "history.csv")))
        original(self, trainer, pl_module)

    monkeypatch.setattr(LastCheckpoint, "on_train_epoch_end", look)
    train(tiny_config(tiny_data, tmp_path / "run", epochs=3, patience=9))
    assert seen == [1, 2, 3]


def test_a_start_that_never_trained_does_not_trap_the_user(tmp_path, tiny_data):
    run_dir = tmp_path / "run"
    run_dir.mkdir()  # what an older version left when the data turned out bad: the config only
    save_config(pipeline.resolve_config(tiny_config(tiny_data, run_dir)), run_dir / "config.yaml")
    with pytest.raises(RunFolderError, match=re.escape("nothing to resume")):
        resume(run_dir)
    with pytest.raises(RunFolderError, match=re.escape("holds no trained model")):
        load_run(run_dir)
    run = train(tiny_config(tiny_data, run_dir, epochs=1))
    assert (run.dir / "model" / "weights.safetensors").is_file()


def test_a_non_empty_foreign_folder_is_not_used(tmp_path, tiny_data):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match=re.escape("is not empty and holds no seqrec run")):
        train(tiny_config(tiny_data, tmp_path))


def test_default_run_folders_are_unique_within_one_second(tmp_path, tiny_data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pipeline.time, "strftime", lambda fmt: "20250101-000000")
    config = pipeline.resolve_config(tiny_config(tiny_data, tmp_path))
    config = pipeline.dataclasses.replace(config, output=pipeline.OutputConfig(None))
    folders = {pipeline._make_run_dir(config)[0] for _ in range(20)}
    assert len(folders) == 20 and all(f.is_dir() for f in folders)
    assert all(re.fullmatch(r"tiny-tiny-20250101-000000-[0-9a-f]{4}", f.name) for f in folders)


def test_report_numbers_are_plain(run_dir):
    report = (run_dir / "report.md").read_text()
    assert "| users | 30 |" in report and "| interactions | 360 |" in report
    assert "e+" not in report
    assert "- read 360 interactions" in report
    assert "- exact duplicates (rows identical to an earlier row): 0, kept" in report


def test_saved_metrics_match(run_dir):
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert load_run(run_dir).metrics == saved
