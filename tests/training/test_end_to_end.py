"""A tiny end-to-end run through the command line: train, the run folder, evaluate, recommend."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml
from safetensors.torch import load_file
from tiny_run import one_thread, register, tiny_config, write_interactions

from seqrec.cli import main
from seqrec.config import load_config
from seqrec.pipeline import evaluate, load_run, recommend

RUN_FILES = (
    "config.yaml", "metrics.json", "per_user/full.parquet", "per_user/uniform10.parquet",
    "report.md", "training.png", "history.csv", "model/weights.safetensors", "model/config.json",
    "model/items.json", "checkpoints/last.ckpt", "checkpoints/best.safetensors",
    "logs/csv/metrics.csv",
)  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One CLI training run shared by the tests of this file (module scope keeps them fast)."""
    root = tmp_path_factory.mktemp("e2e")
    data = write_interactions(root / "tiny.tsv")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(data, root / "run")))
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, one_thread():
        register(patch)
        with redirect_stdout(out):
            overrides = ["training.epochs=2", "training.lr=3e-2", "training.tensorboard=true"]
            code = main(["train", str(config), *overrides])
    assert code == 0
    return root / "run", out.getvalue()


def test_train_writes_every_run_file(trained):
    run_dir, _ = trained
    missing = [f for f in RUN_FILES if not (run_dir / f).is_file()]
    assert missing == []


def test_tensorboard_logs_hold_the_loss_and_the_validation_metric(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(trained[0] / "logs" / "tensorboard")).Reload()
    tags = events.Tags()["scalars"]
    assert any("loss" in tag for tag in tags), tags
    assert any("NDCG@10" in tag for tag in tags), tags
    assert len(events.Scalars(next(tag for tag in tags if "NDCG@10" in tag))) == 2  # per epoch


def test_train_prints_the_metric_table_and_the_report_path(trained):
    run_dir, printed = trained
    assert "| NDCG@10 |" in printed and "95% CI" in printed
    assert printed.strip().endswith(f"report: {run_dir / 'report.md'}")


def test_saved_config_holds_the_overrides_and_round_trips(trained):
    run_dir, _ = trained
    config = load_config(run_dir / "config.yaml")
    assert config.training.epochs == 2
    assert config.training.lr == 0.03
    assert config.output.dir == str(run_dir)
    assert len(pl.read_csv(run_dir / "history.csv")) == 2


def test_history_and_report_give_the_peak_resident_memory(trained):
    run_dir, _ = trained
    peaks = pl.read_csv(run_dir / "history.csv")["peak_rss_mib"].to_list()
    assert peaks[0] > 50 and peaks == sorted(peaks)  # torch alone is over 50 MiB; a peak only grows
    report = (run_dir / "report.md").read_text()
    assert f"Peak resident memory {peaks[-1]:,.0f} MiB (per epoch" in report


def test_metrics_json_has_every_protocol_with_intervals(trained):
    run_dir, _ = trained
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"full", "uniform10"}
    ndcg = metrics["full"]["metrics"]["NDCG@10"]
    assert ndcg["ci_low"] <= ndcg["mean"] <= ndcg["ci_high"]
    per_user = pl.read_parquet(run_dir / "per_user/full.parquet")
    assert per_user["user"].to_list()[0].startswith("u")  # raw user ids
    assert per_user["NDCG@10"].mean() == pytest.approx(ndcg["mean"])


def test_loaded_run_evaluates_to_the_saved_metrics(trained):
    run_dir, _ = trained
    run = load_run(run_dir)
    saved = json.loads((run_dir / "metrics.json").read_text())["uniform10"]["metrics"]
    again = evaluate(run, protocol="uniform10")
    assert again["NDCG@10"] == pytest.approx(saved["NDCG@10"]["mean"])
    assert again["HR@10"] == pytest.approx(saved["HR@10"]["mean"])


def test_recommend_returns_raw_ids_without_the_history(trained):
    run_dir, _ = trained
    history = ["i3", "i4", "i5"]
    top = recommend(run_dir, history, k=10)
    assert len(top) == 10
    assert all(item.startswith("i") for item, _ in top)
    assert not {item for item, _ in top} & set(history)
    scores = [score for _, score in top]
    assert scores == sorted(scores, reverse=True)
    with_history = recommend(run_dir, history, k=40, exclude_history=False)
    assert set(history) <= {item for item, _ in with_history}
    with pytest.raises(ValueError, match="history is empty"):
        recommend(run_dir, [], k=3)


def test_recommend_cli_and_unknown_id_error(trained, capsys):
    run_dir, _ = trained
    assert main(["recommend", str(run_dir), "--history", "i1", "i2", "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["1", "2", "3"]
    assert main(["recommend", str(run_dir), "--history", "i1", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'nope'" in err and "unknown item id" in err


def test_evaluate_run_cli_with_another_protocol(trained, capsys, tmp_path):
    run_dir, _ = trained
    assert (
        main(["evaluate", str(run_dir), "--protocol", "popular5", "--output", str(tmp_path)]) == 0
    )
    assert "protocol: popular5" in capsys.readouterr().out
    assert set(json.loads((tmp_path / "metrics.json").read_text())) == {"popular5"}


def test_training_reduced_the_loss_and_kept_the_best_weights(trained):
    run_dir, _ = trained
    history = pl.read_csv(run_dir / "history.csv")
    assert history["train_loss"][1] < history["train_loss"][0]
    run = load_run(run_dir)
    best = load_file(run_dir / "checkpoints/best.safetensors")
    for name, tensor in run.model.state_dict().items():
        assert torch.equal(tensor, best[name]), name


def test_train_logs_one_line_per_epoch_without_a_terminal(trained):
    run_dir, printed = trained
    lines = printed.splitlines()
    assert lines[0] == f"training for at most 2 epochs (4 batches each); run folder: {run_dir}"
    assert re.fullmatch(
        r"epoch 1/2  loss \d+\.\d{4}  valid NDCG@10 0\.\d{4} \(best 0\.\d{4} @ 1\)  "
        r"\d+\.\d s  ETA \d+ s",
        lines[1],
    ), lines[1]
    assert lines[2].startswith("epoch 2/2  loss ") and "ETA" not in lines[2]
    assert "\r" not in printed
