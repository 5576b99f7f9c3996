"""A CTR model trained through ``seqrec.train`` on data with click labels learns those labels.

The synthetic data's label is a property of the item (even items are liked), which next-item
behaviour does not reveal: a model trained on sampled non-clicks instead of the data's labels
scores the held-out impressions at chance, one trained on the labels near 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seqrec.errors import ConfigError
from seqrec.pipeline import train

N_USERS, N_ITEMS, LENGTH = 80, 30, 16


def write_labelled(path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["user_id,item_id,timestamp,liked"]
    for u in range(N_USERS):
        for t, item in enumerate(rng.integers(0, N_ITEMS, LENGTH)):
            rows.append(f"u{u},i{item},{t},{int(item % 2 == 0)}")
    path.write_text("\n".join(rows) + "\n")
    return path


def config(data: Path, out: Path, model: str, labels: dict | None) -> dict:
    data_section = {"dataset": str(data), "split": {"kind": "ratio", "ratios": [0.7, 0.1, 0.2]}}
    if labels is not None:
        data_section["click_labels"] = labels
    return {
        "data": data_section,
        "model": {"name": model, "max_len": 10, "embedding_size": 8, "att_hidden_size": [8],
                  "mlp_hidden_size": [16], "mlp_activation": "relu"},
        "training": {"epochs": 4, "batch_size": 64, "lr": 0.01, "window_step": 1,
                     "early_stopping_metric": "AUC", "progress_bar": False},
        "evaluation": {"protocols": ["labelled"], "metrics": ["AUC", "GAUC", "LogLoss"]},
        "output": {"dir": str(out)},
    }  # fmt: skip


@pytest.mark.parametrize("model", ["din", "dien"])
def test_trained_on_the_datas_labels_a_ctr_model_learns_them(model, tmp_path) -> None:
    data = write_labelled(tmp_path / "liked.csv")
    run = train(config(data, tmp_path / "run", model, {"column": "liked"}))
    result = run.results["labelled"]
    assert result["AUC"] > 0.9, result.summary
    assert result["GAUC"] > 0.9, result.summary
    assert result["LogLoss"] < 0.6  # chance (half the items liked): 0.693
    report = (run.dir / "report.md").read_text()
    assert "click labels:" in report


def test_without_the_labels_in_training_the_same_model_is_at_chance(tmp_path) -> None:
    """The control of the test above: DIN on the same data trained with sampled non-clicks
    (the labelled protocol reads the labels; training does not, as the model is told so)."""
    data = write_labelled(tmp_path / "liked.csv")
    import seqrec.models.din as din

    original = din.DIN.trains_on_click_labels
    try:
        din.DIN.trains_on_click_labels = False
        run = train(config(data, tmp_path / "run", "din", {"column": "liked"}))
    finally:
        din.DIN.trains_on_click_labels = original
    assert run.results["labelled"]["AUC"] < 0.7


def test_the_labelled_protocol_without_labels_is_a_config_error(tmp_path) -> None:
    data = write_labelled(tmp_path / "liked.csv")
    with pytest.raises(ConfigError, match=r"labelled.*set data\.click_labels"):
        train(config(data, tmp_path / "run", "din", None))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (("training", "early_stopping_metric", "NDCG@10"), "training.early_stopping_metric: NDCG"),
        (("evaluation", "metrics", ["AUC", "HR@10"]), "evaluation.metrics: HR@10 rank candidates"),
    ],
)
def test_ranking_metrics_under_the_labelled_protocol_fail_before_the_data_is_read(
    override, message, tmp_path
) -> None:
    section, key, value = override
    cfg = config(tmp_path / "never-read.csv", tmp_path / "run", "din", {"column": "liked"})
    cfg[section][key] = value
    with pytest.raises(ConfigError, match=message):
        train(cfg)


def test_a_run_of_several_seeds_reports_each_ctr_metric_over_the_seeds(tmp_path) -> None:
    data = write_labelled(tmp_path / "liked.csv")
    cfg = config(data, tmp_path / "run", "din", {"column": "liked"})
    cfg["training"] |= {"seeds": [1, 2], "epochs": 1}
    run = train(cfg)
    saved = json.loads((run.dir / "metrics.json").read_text())["labelled"]["metrics"]
    for name in ("AUC", "GAUC", "LogLoss"):
        per_seed = [seed.results["labelled"][name] for seed in run.seeds]
        assert saved[name]["per_seed"] == pytest.approx(per_seed)
        assert saved[name]["mean"] == pytest.approx(np.mean(per_seed))
        assert saved[name]["ci_low"] < saved[name]["mean"] < saved[name]["ci_high"]
