"""A tiny suite run end to end: the tables and JSON say what the run folders hold, the
significance rows are ``compare_runs``, and a second run trains nothing."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
from tiny_suite import write_suite

from seqrec.benchmark import load_suite, run_suite
from seqrec.benchmark.plots import mean_curve
from seqrec.benchmark.report import _cell, training_table
from seqrec.benchmark.results import ModelSummary, SeedTraining, holm
from seqrec.cli import main
from seqrec.comparison import compare_runs
from seqrec.config import ConfigError
from seqrec.training.data import training_windows
from seqrec.training.prepare import prepare_data


def test_results_json_holds_each_runs_metrics_across_seeds(suite_run):
    _, results = suite_run
    saved = json.loads(results.results_json.read_text())
    assert [m["name"] for m in saved["models"]] == ["pop", "tiny-a", "tiny-b"]
    for model in saved["models"]:
        run = json.loads((results.out / "runs" / model["name"] / "metrics.json").read_text())
        for protocol in ("full", "uniform10"):
            for metric in ("NDCG@10", "HR@10"):
                got, want = model["metrics"][protocol][metric], run[protocol]["metrics"][metric]
                assert got["mean"] == want["mean"] and got["std"] == want["std"]
                assert (got["ci_low"], got["ci_high"]) == (want["ci_low"], want["ci_high"])
                assert got["mean"] == pytest.approx(np.mean(got["per_seed"]))
    assert saved["seeds"] == [1, 2] and saved["metric"] == "NDCG@10"
    assert saved["models"][1]["overrides"] == {}
    assert saved["models"][2]["overrides"] == {
        "training.lr": 0.001, "model.hidden_size": 8, "training.dupe_factor": 2,
    }  # fmt: skip


def test_the_table_shows_mean_spread_and_ci_of_every_model(suite_run):
    _, results = suite_run
    text = results.results_md.read_text()
    saved = json.loads(results.results_json.read_text())
    for model in saved["models"]:
        s = model["metrics"]["full"]["NDCG@10"]
        cell = f"{s['mean']:.4f} ± {s['std']:.4f} [{s['ci_low']:.4f}, {s['ci_high']:.4f}]"
        assert f"| {model['name']} | {cell} |" in text
    assert "| pop | - (fitted from counts) | 0 | - | - |" in text
    assert "command: `seqrec benchmark" in text and "machine:" in text and "date:" in text
    for png in ("time_to_quality.png", "bars.png"):
        assert (results.out / png).read_bytes()[:4] == b"\x89PNG"


def test_sequences_per_second_counts_window_visits_over_training_step_time(suite_run):
    _, results = suite_run
    tiny = next(s for s in results.summaries if s.name == "tiny-b")
    train = prepare_data(tiny.config.data).split.train
    windows, _ = training_windows(train, 6, None)  # the tiny model trains on max_len columns
    histories = [pl.read_csv(tiny.run_dir / f"seed-{s}" / "history.csv") for s in (1, 2)]
    visits = len(windows) * 2 * sum(h.height for h in histories)  # tiny-b: dupe_factor 2
    seconds = sum(h["train_s"].sum() for h in histories)
    assert tiny.sequences_per_s == pytest.approx(visits / seconds)
    assert [t.epochs for t in tiny.seeds] == [2, 2]
    assert next(s for s in results.summaries if s.name == "pop").sequences_per_s is None


def test_significance_rows_are_compare_runs_of_the_best_against_each_other(suite_run):
    _, results = suite_run
    for protocol, rows in results.significance.items():
        values = {s.name: s.value(protocol, "NDCG@10") for s in results.summaries}
        best = max(values, key=values.get)
        assert {r.best for r in rows} == {best}
        assert sorted(r.other for r in rows) == sorted(set(values) - {best})
        for row in rows:
            (direct,) = compare_runs(
                results.out / "runs" / best, results.out / "runs" / row.other,
                ["NDCG@10"], [protocol],
            )  # fmt: skip
            assert (row.diff, row.ci_low, row.ci_high, row.p_value) == (
                direct.diff, direct.ci_low, direct.ci_high, direct.p_value,
            )  # fmt: skip
        assert [r.p_holm for r in rows] == holm([r.p_value for r in rows])


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.01]) == pytest.approx([0.5, 0.02])
    assert holm([0.04, 0.03]) == pytest.approx([0.06, 0.06])  # monotone in the sorted order
    assert holm([0.9, 0.8]) == [1.0, 1.0]  # capped at 1


def test_a_second_run_trains_nothing_and_gives_the_same_table(suite_run):
    suite, results = suite_run
    weights = results.out / "runs" / "tiny-b" / "seed-2" / "model" / "weights.safetensors"
    before = weights.stat().st_mtime_ns
    again = run_suite(suite, output=results.out, log=lambda line: None)
    assert again.trained == []
    assert weights.stat().st_mtime_ns == before
    first, second = (json.loads(r.results_json.read_text())["models"] for r in (results, again))
    assert [m["metrics"] for m in first] == [m["metrics"] for m in second]


def test_an_interrupted_model_is_resumed_and_only_it(no_suite_plots, tmp_path):
    suite = load_suite(write_suite(tmp_path))
    out = tmp_path / "out"
    run_suite(suite, models=["tiny-a", "pop"], output=out, log=lambda line: None)
    run_dir = out / "runs" / "tiny-a"
    (run_dir / "metrics.json").unlink()  # as if stopped after its seeds
    seed1 = run_dir / "seed-1" / "model" / "weights.safetensors"
    before = seed1.stat().st_mtime_ns
    results = run_suite(suite, output=out, log=lambda line: None)
    assert results.trained == ["tiny-a", "tiny-b"]
    assert seed1.stat().st_mtime_ns == before  # finished seeds are kept
    assert [s.name for s in results.summaries] == ["pop", "tiny-a", "tiny-b"]


def test_models_selects_entries_and_the_table_covers_the_complete_ones(no_suite_plots, tmp_path):
    suite = load_suite(write_suite(tmp_path))
    results = run_suite(suite, models=["pop", "tiny-b"], output=tmp_path / "o", log=print)
    assert [s.name for s in results.summaries] == ["pop", "tiny-b"]
    assert not (tmp_path / "o" / "runs" / "tiny-a").exists()
    with pytest.raises(ConfigError, match="no model 'tiny-c' in the suite; its models: pop"):
        run_suite(suite, models=["tiny-c"], output=tmp_path / "o")


def test_a_run_folder_of_another_config_is_an_error_not_reused(no_suite_plots, tmp_path):
    path = write_suite(tmp_path)
    run_suite(load_suite(path), models=["tiny-a"], output=tmp_path / "o", log=lambda line: None)
    changed = path.read_text().replace("lr: 0.01", "lr: 0.02")
    (tmp_path / "tiny.yaml").write_text((tmp_path / "tiny.yaml").read_text().replace(
        "lr: 0.01", "lr: 0.02"))  # fmt: skip
    path.write_text(changed)
    with pytest.raises(ConfigError, match=r"holds a run of another config \(training.lr: 0.01"):
        run_suite(load_suite(path), models=["tiny-a"], output=tmp_path / "o")
    # a complete run that is only tabulated is checked as well
    with pytest.raises(ConfigError, match=r"runs/tiny-a holds a run of another config"):
        run_suite(load_suite(path), models=["pop"], output=tmp_path / "o")


def test_quick_writes_its_own_folder(no_suite_plots, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = load_suite(write_suite(tmp_path))
    results = run_suite(suite, quick=True, models=["tiny-a"], log=lambda line: None)
    assert results.out.as_posix() == "benchmarks/results/suite-quick"
    assert [t.epochs for t in results.summaries[0].seeds] == [1, 1]


def test_the_cli_prints_the_table_of_a_finished_suite(suite_run, capsys):
    suite, results = suite_run
    assert main(["benchmark", str(suite.path), "--output", str(results.out)]) == 0
    out = capsys.readouterr().out
    assert "## Test metrics, full (30 users)" in out and "| tiny-b |" in out
    assert main(["benchmark", "no-such-suite"]) == 2
    assert "no suite named 'no-such-suite'" in capsys.readouterr().err


def test_the_mean_curve_averages_the_validations_every_seed_reached():
    a = SeedTraining(1, [{"epoch": 1, "time_s": 1.0, "valid_M": 0.1},
                         {"epoch": 2, "time_s": 2.0, "valid_M": 0.3}])  # fmt: skip
    b = SeedTraining(2, [{"epoch": 1, "time_s": 3.0, "valid_M": 0.2}])
    times, values = mean_curve([a, b], "M")
    assert times.tolist() == [2.0] and values.tolist() == pytest.approx([0.15])


def test_a_model_trained_without_validation_has_no_curve(tmp_path):
    unvalidated = SeedTraining(1, [{"epoch": 1, "time_s": 4.0, "train_s": 3.0}])
    validated = SeedTraining(2, [{"epoch": 1, "time_s": 1.0, "train_s": 1.0, "valid_M": 0.1}])
    config = SimpleNamespace(training=SimpleNamespace(early_stopping_metric="M"))
    summary = ModelSummary("m", tmp_path, config, {}, {}, [unvalidated], 10)
    assert summary.trained and not summary.validated("M")
    assert "| 1 | - (not validated: last epoch kept) |" in training_table([summary])[2]
    summary.seeds.append(validated)
    assert summary.validated("M") and not summary.validated("N")
    assert "| 1, 1 | -, 1 |" in training_table([summary])[2]


def test_a_single_seed_cell_shows_no_spread():
    one = {"mean": 0.1, "std": 0.0, "ci_low": 0.05, "ci_high": 0.15, "per_seed": [0.1]}
    assert _cell(one) == "0.1000 [0.0500, 0.1500]"
    two = {**one, "std": 0.01, "per_seed": [0.09, 0.11]}
    assert _cell(two) == "0.1000 ± 0.0100 [0.0500, 0.1500]"
