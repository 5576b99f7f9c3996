"""The evaluator against ranking by hand: counted ranks, ties, history exclusion, sampling."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import build_corpus
from seqrec.data.splits import leave_one_out, temporal_split, time_quantile
from seqrec.evaluation.evaluator import WIDTH_STEP, Evaluator
from seqrec.evaluation.protocols import FullRanking, SampledRanking, parse_protocol
from seqrec.models.pop import Pop

N_USERS, N_ITEMS = 50, 30


class TableModel(nn.Module):
    """Scores come from a fixed (user, item) table: integers, so ties are frequent."""

    max_len = 5

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.table, self.n_items = table, table.shape[1] - 1

    def full_sort_predict(self, batch: SequenceBatch) -> Tensor:
        return self.table[batch.users]

    def predict(self, batch: SequenceBatch, items: Tensor) -> Tensor:
        return self.table[batch.users].gather(1, items)


@pytest.fixture(scope="module")
def split():
    rng = np.random.default_rng(0)
    n = rng.integers(3, 15, N_USERS)
    frame = pl.DataFrame(
        {
            "user": np.repeat(np.arange(N_USERS), n).astype(str),
            "item": rng.integers(0, N_ITEMS, n.sum()).astype(str),
            "timestamp": np.arange(n.sum(), dtype=float),
        }
    )
    corpus = build_corpus(frame)
    assert corpus.n_items == N_ITEMS
    return leave_one_out(corpus)


@pytest.fixture(scope="module")
def model():
    generator = torch.Generator().manual_seed(1)
    return TableModel(torch.randint(0, 8, (N_USERS, N_ITEMS + 1), generator=generator).float())


def rank_by_hand(scores: np.ndarray, target: int, candidates: set[int]) -> int:
    """1 + number of other candidates scoring at least as high as the target."""
    return 1 + sum(1 for c in candidates if c != target and scores[c] >= scores[target])


@pytest.mark.parametrize("exclude_history", [True, False])
def test_full_ranking_ranks_equal_ranking_by_hand(split, model, exclude_history):
    evaluator = Evaluator(split.test, FullRanking(exclude_history), N_ITEMS)
    ranks = evaluator.ranks(model)
    for row, user in enumerate(split.test.users):
        target = int(split.test.targets.row(row)[0])
        candidates = set(range(1, N_ITEMS + 1))
        if exclude_history:
            candidates -= set(split.test.context.row(row).tolist()) - {target}
        expected = rank_by_hand(model.table[user].numpy(), target, candidates)
        assert ranks[row, 0] == expected


def test_sampled_ranking_ranks_equal_ranking_by_hand(split, model):
    evaluator = Evaluator(split.test, SampledRanking(10, "uniform", seed=3), N_ITEMS)
    ranks = evaluator.ranks(model)
    for row, user in enumerate(split.test.users):
        target = int(split.test.targets.row(row)[0])
        negatives = evaluator.negatives[row]
        assert target not in negatives
        assert not set(negatives.tolist()) & set(split.test.context.row(row).tolist())
        expected = rank_by_hand(model.table[user].numpy(), target, {target, *negatives.tolist()})
        assert ranks[row, 0] == expected


def test_results_do_not_depend_on_the_batch_size(split, model):
    results = [
        Evaluator(split.test, parse_protocol(p), N_ITEMS, batch_size=b).evaluate(model)
        for p in ("full", "uniform10")
        for b in (1, 7, 1000)
    ]
    for first, other in [
        (results[0], results[1]),
        (results[0], results[2]),
        (results[3], results[5]),
    ]:
        for name in first.per_user:
            assert np.array_equal(first.per_user[name], other.per_user[name])


def test_equal_scores_never_flatter_a_model(split):
    constant = TableModel(torch.ones(N_USERS, N_ITEMS + 1))
    result = Evaluator(split.test, FullRanking(), N_ITEMS).evaluate(constant)
    assert result["HR@10"] == 0.0
    assert result["NDCG@10"] == 0.0


def test_history_exclusion_removes_items_that_would_otherwise_outrank_the_target(split):
    # a model that scores the user's history highest and the target next
    table = torch.zeros(N_USERS, N_ITEMS + 1)
    for row, user in enumerate(split.test.users):
        table[user, torch.from_numpy(split.test.context.row(row))] = 10.0
        table[user, int(split.test.targets.row(row)[0])] = 5.0
    greedy = TableModel(table)
    excluded = Evaluator(split.test, FullRanking(True), N_ITEMS).ranks(greedy)
    kept = Evaluator(split.test, FullRanking(False), N_ITEMS).ranks(greedy)
    assert (excluded[:, 0] == 1).sum() >= (kept[:, 0] == 1).sum()
    repeat = np.array(
        [
            int(split.test.targets.row(r)[0]) in split.test.context.row(r)
            for r in range(len(split.test))
        ]
    )
    assert (excluded[~repeat, 0] == 1).all()


def test_negatives_are_shared_between_evaluators_and_cached(split, model, tmp_path: Path):
    protocol = SampledRanking(8, "popular", seed=11)
    counts = np.bincount(split.train.items, minlength=N_ITEMS + 1) + 1
    a = Evaluator(split.test, protocol, N_ITEMS, counts, cache_dir=tmp_path)
    cached = list(tmp_path.glob("negatives-*.npy"))
    assert len(cached) == 1
    b = Evaluator(split.test, protocol, N_ITEMS, counts, cache_dir=tmp_path)
    assert np.array_equal(a.negatives, b.negatives)
    assert np.array_equal(np.load(cached[0]), a.negatives)
    assert a.evaluate(model).summary == b.evaluate(model).summary


def test_popularity_baseline_scores_training_counts(split):
    pop = Pop.fit(split.train, N_ITEMS)
    batch = SequenceBatch(item_seq=torch.zeros(2, 1, dtype=torch.long))
    counts = np.bincount(split.train.items, minlength=N_ITEMS + 1)
    assert pop.full_sort_predict(batch)[1].tolist() == counts.astype(float).tolist()
    result = Evaluator(split.test, FullRanking(), N_ITEMS).evaluate(pop)
    assert 0.0 <= result["HR@10"] <= 1.0
    assert set(result.summary["HR@10"]) >= {"mean", "ci_low", "ci_high", "n"}


def test_several_targets_per_user_rank_like_a_full_sort_with_column_tie_breaks(model):
    rng = np.random.default_rng(5)
    n = rng.integers(4, 15, N_USERS)
    frame = pl.DataFrame(
        {
            "user": np.repeat(np.arange(N_USERS), n).astype(str),
            "item": rng.integers(0, N_ITEMS, n.sum()).astype(str),
            "timestamp": rng.integers(0, 100, n.sum()).astype(float),
        }
    )
    corpus = build_corpus(frame)
    split = temporal_split(corpus, time_quantile(corpus, 0.6), targets="all")
    ranks = Evaluator(split.test, FullRanking(), corpus.n_items).ranks(model)
    distinct = [len(set(split.test.targets.row(r).tolist())) for r in range(len(split.test))]
    assert np.isfinite(ranks).sum(1).tolist() == distinct
    for row, user in enumerate(split.test.users):
        scores = model.table[user].numpy()
        relevant = sorted(set(split.test.targets.row(row).tolist()))
        others = set(range(1, corpus.n_items + 1)) - set(split.test.context.row(row).tolist())
        others -= set(relevant)
        expected = [
            1
            + sum(scores[c] >= scores[i] for c in others)
            + sum(scores[j] > scores[i] or (scores[j] == scores[i] and j < i) for j in relevant)
            for i in relevant
        ]
        assert ranks[row, : len(relevant)].tolist() == expected


def test_short_histories_are_not_padded_to_max_len(split):
    """Each user is scored at its history length rounded up to WIDTH_STEP, capped at max_len."""

    class WidthSpy(TableModel):
        max_len = 12

        def full_sort_predict(self, batch: SequenceBatch) -> Tensor:
            width = batch.item_seq.shape[1]
            self.seen += [(user, width) for user in batch.users.tolist()]
            return super().full_sort_predict(batch)

    spy = WidthSpy(torch.zeros(N_USERS, N_ITEMS + 1))
    spy.seen = []
    Evaluator(split.test, FullRanking(True), N_ITEMS, batch_size=4).ranks(spy)
    counts = np.diff(split.test.context.offsets).tolist()
    lengths = dict(zip(split.test.users.tolist(), counts, strict=True))
    assert sorted(user for user, _ in spy.seen) == sorted(lengths)
    for user, width in spy.seen:
        assert width == min(-(-lengths[user] // WIDTH_STEP) * WIDTH_STEP, spy.max_len)
