"""BERT4Rec and SASRec, trained through ``seqrec.train`` on real ml-100k for seconds, must beat the
popularity baseline scored on the same users: a broken loss, target or mask cannot pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqrec.comparison import compare_runs
from seqrec.pipeline import train

INTER = Path(__file__).parents[3] / "shared" / "data" / "ml-100k" / "ml-100k.inter"
pytestmark = pytest.mark.skipif(not INTER.exists(), reason="shared ml-100k data not present")

SMALL = {"max_len": 30, "hidden_size": 32, "n_layers": 1}
MODELS = {
    "sasrec": ({"loss": "ce", "hidden_dropout": 0.2}, {"epochs": 8}),
    "bert4rec": ({"mask_ratio": 0.3, "hidden_dropout": 0.1}, {"epochs": 10, "dupe_factor": 2}),
}


def config(model: dict, out: Path, **training: object) -> dict:
    """ml-100k with each user's newest 50 ratings, leave-one-out, full ranking."""
    return {
        "data": {"dataset": str(INTER), "max_len": 50},
        "model": model,
        "training": {"batch_size": 64, "lr": 0.003, "window_step": 20, "eval_every": 100}
        | {"progress_bar": False, **training},
        "evaluation": {"protocols": ["full"], "metrics": ["NDCG@10", "HR@10"]},
        "output": {"dir": str(out)},
    }


@pytest.fixture(scope="module")
def popularity(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(config({"name": "pop"}, tmp_path_factory.mktemp("slice") / "pop")).dir


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_transformer_trained_for_seconds_beats_popularity(name, popularity, tmp_path):
    model, training = MODELS[name]
    run = train(config({"name": name, **SMALL, **model}, tmp_path / name, **training))
    (ndcg,) = compare_runs(run.dir, popularity, metrics=["NDCG@10"])
    # measured: SASRec 0.067 and BERT4Rec 0.052 against popularity's 0.030 (943 users)
    assert ndcg.ci_low > 0.0, ndcg
    assert ndcg.a > 1.5 * ndcg.b
