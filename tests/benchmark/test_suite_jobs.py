"""``seqrec benchmark --jobs N``: entries trained in parallel processes give the serial figures.

The tiny test model is registered in this process only, so these suites use registered models
(GRU4Rec at tiny sizes and popularity), which the spawned processes know too.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))  # the tiny data

from tiny_run import write_interactions

from seqrec.benchmark import load_suite, run_suite
from seqrec.cli import main
from seqrec.config import ConfigError, save_config


def write_gru_suite(root: Path) -> Path:
    data = write_interactions(root / "walks.tsv")
    gru = {
        "data": {"dataset": "x"},
        "model": {"name": "gru4rec", "max_len": 6, "embedding_size": 8, "hidden_size": 8},
        "training": {"epochs": 2, "batch_size": 8, "lr": 0.01, "progress_bar": False},
    }
    (root / "gru.yaml").write_text(yaml.safe_dump(gru))
    (root / "pop.yaml").write_text(
        yaml.safe_dump({"data": {"dataset": "x"}, "model": {"name": "pop"}})
    )
    suite = {
        "description": "GRU4Rec twice and popularity on synthetic walks",
        "data": {"dataset": str(data)},
        "evaluation": {"protocols": ["full", "uniform10"], "metrics": ["NDCG@10", "HR@10"]},
        "seeds": [1, 2],
        "metric": "NDCG@10",
        "models": [
            {"name": "gru-a", "config": str(root / "gru.yaml")},
            {"name": "pop", "config": str(root / "pop.yaml")},
            {"name": "gru-b", "config": str(root / "gru.yaml"),
             "overrides": {"training.lr": 0.003}},
        ],
    }  # fmt: skip
    path = root / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def no_figures(patch: pytest.MonkeyPatch) -> None:
    patch.setattr("seqrec.benchmark.plots.time_to_quality", lambda *args: None)
    patch.setattr("seqrec.benchmark.plots.bars", lambda *args: None)


def model_metrics(results) -> list:
    return [
        (m["name"], m["metrics"]) for m in json.loads(results.results_json.read_text())["models"]
    ]


def test_parallel_jobs_train_in_other_processes_and_give_the_serial_figures(tmp_path, monkeypatch):
    no_figures(monkeypatch)
    monkeypatch.setattr("seqrec.benchmark.runner.threads_per_job", lambda jobs: 1)
    suite = load_suite(write_gru_suite(tmp_path))
    serial = run_suite(suite, output=tmp_path / "serial", log=lambda line: None)

    def not_here(*args, **kwargs):
        raise AssertionError("with jobs > 1 the suite's process trains nothing itself")

    monkeypatch.setattr("seqrec.benchmark.runner.train", not_here)
    lines: list[str] = []
    parallel = run_suite(suite, output=tmp_path / "parallel", log=lines.append, jobs=2)
    assert parallel.trained == ["gru-a", "pop", "gru-b"]
    assert model_metrics(parallel) == model_metrics(serial)
    assert lines[0] == "3 models, 2 at a time, 1 torch thread(s) each"
    saved = json.loads(parallel.results_json.read_text())
    assert saved["jobs"] == 2 and saved["command"].endswith("--jobs 2")


def test_an_entrys_error_in_a_job_stops_the_suite_with_its_message(tmp_path, monkeypatch):
    no_figures(monkeypatch)
    suite = load_suite(write_gru_suite(tmp_path))
    run_dir = tmp_path / "o" / "runs" / "gru-a"
    config = suite.config_of(suite.entry("gru-a"), False, run_dir)
    run_dir.mkdir(parents=True)
    other = dataclasses.replace(config, training=dataclasses.replace(config.training, lr=0.02))
    save_config(other, run_dir / "config.yaml")
    with pytest.raises(ConfigError, match=r"runs/gru-a holds a run of another config"):
        run_suite(suite, output=tmp_path / "o", log=lambda line: None, jobs=2)


def test_jobs_must_be_positive(tmp_path, capsys):
    assert main(["benchmark", str(write_gru_suite(tmp_path)), "--jobs", "0"]) == 2
    assert (
        capsys.readouterr().err.strip() == "seqrec: error: jobs: expected a positive integer, got 0"
    )
