"""The pipeline's test figures come from the test split, with history excluded and ties counted
against the model: checked with an oracle whose ranks are known exactly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import seqrec.models as models
from seqrec.batch import SequenceBatch
from seqrec.pipeline import evaluate, train

N_ITEMS = 60
LENGTH = 8  # training items per user, then one validation and one test item


@dataclass(frozen=True)
class OracleConfig:
    n_items: int
    max_len: int = 12


class Oracle(nn.Module):
    """Knows the data's rule: the item after the newest one scores 2, and so does the item after
    that (a tie); the user's own items score 3 (they must be excluded from full ranking).

    The test target is always ``newest + 1``: under the right split, exclusion and tie rule its
    rank is exactly 2 (behind its tie), for every user.
    """

    def __init__(self, config: OracleConfig) -> None:
        super().__init__()
        self.config, self.n_items, self.max_len = config, config.n_items, config.max_len
        self.train_seq_len = config.max_len
        self.weight = nn.Parameter(torch.zeros(()))  # something for the optimiser to step

    def calculate_loss(self, batch: SequenceBatch, generator=None) -> Tensor:
        return (self.weight - 1.0) ** 2

    def full_sort_predict(self, batch: SequenceBatch) -> Tensor:
        seq = batch.item_seq  # (B, L), newest last
        scores = torch.zeros(len(seq), self.n_items + 1)
        scores.scatter_(1, seq, 3.0)  # the user's history
        newest = seq[:, -1:]
        scores.scatter_(1, newest % self.n_items + 1, 2.0)  # the next item: the test target
        scores.scatter_(1, (newest + 1) % self.n_items + 1, 2.0)  # a non-history item tied with it
        scores[:, 0] = -torch.inf
        return scores

    def predict(self, batch: SequenceBatch, items: Tensor) -> Tensor:
        return self.full_sort_predict(batch).gather(1, items)


def write_walks(path: Path, n_users: int = 12) -> Path:
    """Users walk item, item + 1, ...; the validation item jumps away, the test item follows it.

    Rows are written sorted by item id (time order is in the timestamps), so items get codes in
    the order of their ids and the oracle's rule holds on codes.
    """
    rows = []
    for u in range(n_users):
        walk = [5 * u + t for t in range(LENGTH)]  # together the walks cover every item
        valid = walk[-1] + 20  # not newest + 1, nor in the history
        items = [*walk, valid, valid + 1]
        rows += [(i % N_ITEMS + 1, f"u{u}", t) for t, i in enumerate(items)]
    rows.sort(key=lambda row: row[0])
    lines = ["user_id\titem_id\ttimestamp", *(f"{u}\t{i}\t{t}" for i, u, t in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def oracle_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(models.MODELS, "oracle", (Oracle, OracleConfig))
    data = write_walks(tmp_path / "walks.tsv")
    config = {
        "data": {"dataset": str(data)},
        "model": {"name": "oracle"},
        "training": {"epochs": 1, "batch_size": 4, "progress_bar": False},
        "evaluation": {"protocols": ["full"], "metrics": ["HR@1", "HR@5", "MRR", "NDCG@10"]},
        "output": {"dir": str(tmp_path / "run")},
    }
    return train(config)


def test_test_metrics_come_from_the_test_split_with_history_excluded_and_ties_against(oracle_run):
    full = oracle_run.results["full"]
    # rank 2 for every user: swap in the validation split, keep the history as candidates,
    # or count ties in the model's favour, and these change
    assert full["HR@1"] == 0.0 and full["HR@5"] == 1.0
    assert full["MRR"] == pytest.approx(0.5)
    assert full["NDCG@10"] == pytest.approx(1 / np.log2(3))
    assert len(full.users) == 12


def test_evaluating_a_saved_run_again_gives_the_same_figures(oracle_run):
    again = evaluate(oracle_run.dir)
    assert again["MRR"] == pytest.approx(0.5) and again["HR@1"] == 0.0
