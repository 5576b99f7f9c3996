"""The labelled protocol: every held-out interaction is one impression with the data's label."""

from dataclasses import replace

import numpy as np
import polars as pl
import pytest
import torch
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.config import ClickLabelsConfig
from seqrec.data.corpus import build_corpus
from seqrec.data.labels import with_click_labels
from seqrec.data.splits import leave_one_out, ratio_split
from seqrec.evaluation.evaluator import Evaluator
from seqrec.evaluation.protocols import LabelledImpressions, parse_protocol

N_USERS, N_ITEMS = 40, 12  # few items: users see an item twice, and scores tie


class TableModel(nn.Module):
    """Scores from a fixed (user, item) table of small integers (ties are frequent)."""

    max_len = 6
    predicts_probabilities = True

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.table, self.n_items = table, table.shape[1] - 1

    def predict(self, batch: SequenceBatch, items: Tensor) -> Tensor:
        return self.table[batch.users].gather(1, items)


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(5)
    n = rng.integers(2, 20, N_USERS)
    frame = pl.DataFrame(
        {
            "user": np.repeat(np.arange(N_USERS), n).astype(str),
            "item": rng.integers(0, N_ITEMS, n.sum()).astype(str),
            "timestamp": np.arange(n.sum(), dtype=float),
            "clicked": rng.integers(0, 2, n.sum()).astype(float),
        }
    )
    return with_click_labels(build_corpus(frame), frame, ClickLabelsConfig("clicked"), "f.csv")


@pytest.fixture(scope="module")
def model():
    generator = torch.Generator().manual_seed(2)
    return TableModel(torch.randint(0, 5, (N_USERS, N_ITEMS + 1), generator=generator) / 4.0)


def impressions_by_hand(split, table: Tensor) -> tuple[list, list, list]:
    """(score, label, user) of every held-out interaction, read off the split directly."""
    scores, labels, users = [], [], []
    test = split.test
    for row, user in enumerate(test.users):
        start, stop = test.targets.offsets[row], test.targets.offsets[row + 1]
        for item, label in zip(test.targets.items[start:stop], test.targets.labels[start:stop],
                               strict=True):  # fmt: skip
            scores.append(float(table[user, item]))
            labels.append(int(label))
            users.append(int(user))
    return scores, labels, users


def pairwise_auc(scores: list, labels: list) -> float:
    """Share of (clicked, not clicked) pairs ordered right, ties counting half."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def test_labelled_auc_and_gauc_equal_a_pairwise_count_over_the_held_out_interactions(
    corpus, model
) -> None:
    split = ratio_split(corpus, (0.6, 0.2, 0.2))
    scores, labels, users = impressions_by_hand(split, model.table)
    items = split.test.targets
    repeated = sum(
        len(set(items.row(r).tolist())) < len(items.row(r)) for r in range(len(split.test))
    )
    assert repeated > 0  # a repeated item is two impressions, each with its own label
    gauc_parts = []
    for user in sorted(set(users)):
        mine = [i for i, u in enumerate(users) if u == user]
        ys = [labels[i] for i in mine]
        if 0 < sum(ys) < len(ys):
            gauc_parts.append((len(mine), pairwise_auc([scores[i] for i in mine], ys)))
    expected_gauc = sum(w * a for w, a in gauc_parts) / sum(w for w, _ in gauc_parts)
    for batch_size in (3, 256):
        evaluator = Evaluator(
            split.test, LabelledImpressions(), corpus.n_items,
            metrics=("AUC", "GAUC", "LogLoss"), batch_size=batch_size,
        )  # fmt: skip
        result = evaluator.evaluate(model)
        assert result["AUC"] == pytest.approx(pairwise_auc(scores, labels), abs=1e-12)
        assert result["GAUC"] == pytest.approx(expected_gauc, abs=1e-12)
        assert result.summary["AUC"]["n"] == len(split.test)
    assert result.protocol == "labelled" and parse_protocol("labelled") == LabelledImpressions()


def test_the_labelled_protocol_refuses_what_it_cannot_measure(corpus) -> None:
    split = ratio_split(corpus, (0.6, 0.2, 0.2))
    with pytest.raises(ValueError, match="AUC, GAUC and LogLoss only, not NDCG@10"):
        Evaluator(split.test, LabelledImpressions(), corpus.n_items, metrics=("AUC", "NDCG@10"))
    unlabelled = replace(split.test, targets=replace(split.test.targets, labels=None))
    with pytest.raises(ValueError, match=r"set data\.click_labels"):
        Evaluator(unlabelled, LabelledImpressions(), corpus.n_items, metrics=("AUC",))
    one_each = leave_one_out(corpus).test  # one impression per user: no GAUC
    with pytest.raises(ValueError, match="GAUC: no user has both"):
        Evaluator(one_each, LabelledImpressions(), corpus.n_items, metrics=("GAUC",))
    assert Evaluator(one_each, LabelledImpressions(), corpus.n_items, metrics=("AUC",))


def test_the_fingerprint_tells_apart_evaluation_sets_that_differ_only_in_labels(corpus) -> None:
    test = ratio_split(corpus, (0.6, 0.2, 0.2)).test
    flipped = replace(test, targets=replace(test.targets, labels=1 - test.targets.labels))
    a, b = (Evaluator(t, LabelledImpressions(), corpus.n_items, metrics=("AUC",))
            for t in (test, flipped))  # fmt: skip
    assert a.fingerprint != b.fingerprint
