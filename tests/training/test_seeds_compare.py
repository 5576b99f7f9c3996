"""Several seeds in one run folder, popularity as a model, and comparing saved runs."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from tiny_run import tiny_config

from seqrec.cli import main
from seqrec.comparison import compare_runs
from seqrec.config import ConfigError
from seqrec.pipeline import evaluate, evaluate_baseline, load_run, resume, train


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory: pytest.TempPathFactory):
    from tiny_run import one_thread, register, write_interactions

    root = tmp_path_factory.mktemp("seeds")
    data = write_interactions(root / "tiny.tsv")
    with pytest.MonkeyPatch.context() as patch, one_thread():
        register(patch)
        run = train(tiny_config(data, root / "run", epochs=2, seeds=[3, 5]))
        single = train(tiny_config(data, root / "single", epochs=2, seed=3))
    return run, single, data


def test_each_seed_gets_its_own_complete_run(seeds_run):
    run, single, _ = seeds_run
    assert [r.config.training.seed for r in run.seeds] == [3, 5]
    for seed in (3, 5):
        assert (run.dir / f"seed-{seed}" / "model" / "weights.safetensors").is_file()
    # seed 3 of the multi-seed run is the same training as a single run with seed 3
    seed3 = run.seeds[0].results["full"]
    assert seed3["NDCG@10"] == single.results["full"]["NDCG@10"]


def test_metrics_across_seeds_are_the_seed_mean_and_spread(seeds_run):
    run, _, _ = seeds_run
    saved = json.loads((run.dir / "metrics.json").read_text())["full"]
    per_seed = [r.results["full"]["NDCG@10"] for r in run.seeds]
    ndcg = saved["metrics"]["NDCG@10"]
    assert ndcg["per_seed"] == pytest.approx(per_seed)
    assert ndcg["mean"] == pytest.approx(np.mean(per_seed))
    assert ndcg["std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert ndcg["ci_low"] <= ndcg["mean"] <= ndcg["ci_high"]
    assert saved["seeds"] == [3, 5]
    # the saved per-user values are each user's mean over the seeds
    per_user = load_run(run.dir).per_user("full")
    seeds = [load_run(r.dir).per_user("full") for r in run.seeds]
    expected = (seeds[0]["NDCG@10"] + seeds[1]["NDCG@10"]) / 2
    np.testing.assert_allclose(per_user["NDCG@10"].to_numpy(), expected.to_numpy())
    assert "std over seeds" in (run.dir / "report.md").read_text()


def test_a_run_of_seeds_evaluates_again_and_resumes_without_retraining(seeds_run, tiny_model):
    run, _, _ = seeds_run
    again = evaluate(run.dir, "full")
    assert again["NDCG@10"] == pytest.approx(run.results["full"]["NDCG@10"])
    weights = run.dir / "seed-5" / "model" / "weights.safetensors"
    before = weights.stat().st_mtime_ns
    resumed = resume(run.dir)  # both seeds finished: evaluated, not trained again
    assert weights.stat().st_mtime_ns == before
    assert resumed.results["full"]["NDCG@10"] == pytest.approx(run.results["full"]["NDCG@10"])


def test_popularity_is_a_model_scored_on_the_runs_own_users(seeds_run, tmp_path):
    _, single, data = seeds_run
    pop = train({**tiny_config(data, tmp_path / "pop"), "model": {"name": "pop"}})
    assert pop.fit.epochs_run == 0 and (pop.dir / "model" / "weights.safetensors").is_file()
    baseline, _ = evaluate_baseline("pop", single.config)
    assert baseline["full"]["NDCG@10"] == pop.results["full"]["NDCG@10"]
    np.testing.assert_array_equal(baseline["full"].users, single.results["full"].users)


def test_pop_follows_a_runs_temporal_split(tmp_path):
    rows = ["user_id\titem_id\ttimestamp"]  # users active over the same period of time
    rows += [
        f"u{u}\ti{(u * 7 + t * 3) % 40}\t{t * 10 + u % 3}" for u in range(30) for t in range(12)
    ]
    data = tmp_path / "shared-time.tsv"
    data.write_text("\n".join(rows) + "\n")
    config = {
        **tiny_config(data, tmp_path / "pop"),
        "model": {"name": "pop"},
        "data": {"dataset": str(data), "split": {"kind": "temporal", "test_quantile": 0.9}},
    }
    run = train(config)
    temporal, _ = evaluate_baseline("pop", run.config)
    default, _ = evaluate_baseline("pop", str(data))  # leave-one-out: other test users
    # the same evaluation set (users, histories, targets) as the run, not the default split's
    assert temporal["full"].fingerprint == run.results["full"].fingerprint
    assert default["full"].fingerprint != run.results["full"].fingerprint


def test_compare_pairs_the_saved_values_and_checks_the_evaluation_set(seeds_run, tmp_path):
    run, single, data = seeds_run
    rows = compare_runs(run.dir, single.dir, metrics=["NDCG@10"], protocols=["full"])
    (row,) = rows
    a = load_run(run.dir).per_user("full")["NDCG@10"].to_numpy()
    b = load_run(single.dir).per_user("full")["NDCG@10"].to_numpy()
    assert row.diff == pytest.approx(a.mean() - b.mean())
    assert row.ci_low <= row.diff <= row.ci_high and row.n_users == len(a)
    same = compare_runs(single.dir, single.dir, metrics=["HR@10"])
    assert all(r.diff == 0.0 and r.p_value == 1.0 for r in same)
    other = train(
        tiny_config(data, tmp_path / "negatives", epochs=1)
        | {"evaluation": {"protocols": ["uniform10"], "metrics": ["HR@10"], "negatives_seed": 7}}
    )
    with pytest.raises(ConfigError, match="not scored on the same uniform10 evaluation set"):
        compare_runs(single.dir, other.dir, protocols=["uniform10"])


def test_compare_on_the_command_line(seeds_run, capsys):
    run, single, _ = seeds_run
    assert main(["compare", str(run.dir), str(single.dir), "--metric", "NDCG@10"]) == 0
    printed = capsys.readouterr().out
    assert "| NDCG@10 |" in printed and "p-value" in printed and "protocol: uniform10" in printed
    assert main(["compare", str(run.dir), str(single.dir), "--metric", "AUC"]) == 2
    assert "metric 'AUC' is not saved for both runs" in capsys.readouterr().err


def test_bootstrap_settings_and_negatives_seed_reach_the_results(seeds_run, tmp_path):
    _, single, data = seeds_run
    narrow = train(
        tiny_config(data, tmp_path / "narrow", epochs=1, seed=3)
        | {"evaluation": {"protocols": ["full"], "metrics": ["NDCG@10"],
                          "bootstrap": {"resamples": 200, "level": 0.5}}}
    )  # fmt: skip
    wide = train(
        tiny_config(data, tmp_path / "wide", epochs=1, seed=3)
        | {"evaluation": {"protocols": ["full"], "metrics": ["NDCG@10"]}}
    )
    s_narrow, s_wide = (
        narrow.results["full"].summary["NDCG@10"],
        wide.results["full"].summary["NDCG@10"],
    )
    assert s_narrow["mean"] == s_wide["mean"]
    assert s_narrow["ci_high"] - s_narrow["ci_low"] < s_wide["ci_high"] - s_wide["ci_low"]
    saved = json.loads((narrow.dir / "metrics.json").read_text())["full"]
    assert saved["bootstrap"] == {"resamples": 200, "level": 0.5, "seed": 0}
    assert "| metric | value | 50% CI |" in narrow.results["full"].to_markdown()
    frame = pl.read_parquet(single.dir / "per_user" / "uniform10.parquet")
    assert frame.height == len(single.results["uniform10"].users)
