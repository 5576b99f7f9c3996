"""Top-k over item blocks: the dense answer, ties by ascending code, exclusions in every block."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from serving_models import CASE_IDS, CASES, N_ITEMS, item_ids, small_model

from seqrec.serving.recommender import Recommender
from seqrec.serving.topk import running_top_k, top_k

RAW = item_ids()


def by_hand(scores: torch.Tensor, k: int) -> tuple[list, list]:
    """Best first, equal scores by ascending column, per row: a sort on (-score, column)."""
    values, columns = [], []
    for row in scores.tolist():
        order = sorted(range(len(row)), key=lambda c: (-row[c], c))[:k]
        values.append([row[c] for c in order])
        columns.append(order)
    return values, columns


@pytest.mark.parametrize("k", [1, 3, 10, 40])
def test_top_k_lists_equal_scores_by_ascending_column(k: int) -> None:
    scores = torch.randint(0, 4, (6, 25), generator=torch.Generator().manual_seed(k)).float()
    scores[0, [11, 3, 7]] = torch.inf  # ties at +inf follow the rule too
    values, columns = top_k(scores, k)
    assert (values.tolist(), columns.tolist()) == by_hand(scores, k)


@pytest.mark.parametrize("width", [1, 2, 7, 25])
def test_running_top_k_over_blocks_is_the_top_k_of_all(width: int) -> None:
    scores = torch.randint(0, 5, (4, 25), generator=torch.Generator().manual_seed(width)).float()
    scores[1, 3:20] = -torch.inf  # fewer finite scores than k in that row
    blocks = ((s, scores[:, s : s + width]) for s in range(0, 25, width))
    values, codes = running_top_k(blocks, 6)
    expected_values, expected_columns = top_k(scores, 6)
    assert torch.equal(codes[:, :4], expected_columns[:, :4])  # row 1's -inf choice is free
    assert torch.equal(values, expected_values)
    finite = torch.isfinite(values)
    assert torch.equal(codes[finite], expected_columns[finite])


def answers(recommender: Recommender, histories: list[list[str]], **options) -> list:
    return [r.items for r in recommender.recommend_many(histories, k=12, **options)]


HISTORIES = [[RAW[c - 1] for c in h] for h in ([3, 5, 9], [30], [], [1, 2, 3, 4, 5, 6, 7, 8, 9])]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("block", [1, 4, 9])
def test_blocked_recommendations_equal_the_dense_ones(case, block: int) -> None:
    model = small_model(*case)
    dense = Recommender(model, RAW)
    blocked = Recommender(model, RAW, max_scores=len(HISTORIES) * block)  # one batch of 4
    for options in ({}, {"exclude_seen": False}, {"candidates": RAW[::3]}):
        expected = answers(dense, HISTORIES, **options)
        got = answers(blocked, HISTORIES, **options)
        assert [[i for i, _ in r] for r in got] == [[i for i, _ in r] for r in expected]
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose([s for _, s in g], [s for _, s in e], rtol=1e-5, atol=1e-6)


def test_tied_scores_come_back_by_ascending_code_in_blocks_too() -> None:
    pop = small_model("pop")
    pop.counts[1:] = torch.arange(N_ITEMS).div(4, rounding_mode="floor").float()  # ties of 4
    history = [RAW[29]]  # code 30, the most popular, is excluded; 29 is next, alone
    codes = (29, 25, 26, 27, 28, 21)  # then 25..28 tied, then the first of 21..24 tied
    expected = [(RAW[c - 1], float((c - 1) // 4)) for c in codes]
    for max_scores in (2**25, 1, 3, 8):
        answer = Recommender(pop, RAW, max_scores=max_scores).recommend(history, k=6)
        assert answer.items == expected
