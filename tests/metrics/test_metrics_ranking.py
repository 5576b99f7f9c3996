import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from metrics_brute_force import REFERENCE, ranked_labels, reference_ranks, scored_batches

from seqrec.metrics import ranking
from seqrec.metrics.ranking import compute, parse_metric_name, ranks_from_scores

INF = math.inf
LOG2_3 = math.log2(3)  # 1.5849625: discount of rank 2 is 1 / LOG2_3 = 0.6309298

# Four users, cutoff 3. Ranks of each user's relevant items (inf = padding).
RANKS = torch.tensor(
    [
        [1.0, 4.0, INF],  # 2 relevant, one in the top 3 at rank 1
        [3.0, INF, INF],  # 1 relevant at rank 3
        [2.0, 5.0, 6.0],  # 3 relevant, one in the top 3 at rank 2
        [7.0, INF, INF],  # 1 relevant, outside the top 3
    ],
    dtype=torch.float64,
)
EXPECTED_AT_3 = {
    "HR@3": [1.0, 1.0, 1.0, 0.0],
    # hits / #relevant: 1/2, 1/1, 1/3, 0/1
    "Recall@3": [0.5, 1.0, 1 / 3, 0.0],
    # hits / 3
    "Precision@3": [1 / 3, 1 / 3, 1 / 3, 0.0],
    # user 0: (1/1) / min(2, 3); user 1: (1/3) / 1; user 2: (1/2) / min(3, 3)
    "MAP@3": [0.5, 1 / 3, 1 / 6, 0.0],
    # user 0: 1/log2(2) = 1; user 1: 1/log2(4) = 0.5; user 2: 1/log2(3)
    "DCG@3": [1.0, 0.5, 1 / LOG2_3, 0.0],
    # IDCG: user 0 (2 items) 1 + 1/log2(3) = 1.6309298; user 1 (1 item) 1;
    # user 2 (3 items) 1 + 1/log2(3) + 1/log2(4) = 2.1309298
    "NDCG@3": [1 / (1 + 1 / LOG2_3), 0.5, (1 / LOG2_3) / (1.5 + 1 / LOG2_3), 0.0],
    # 1 / best rank, 0 beyond the cutoff
    "MRR@3": [1.0, 1 / 3, 0.5, 0.0],
    # uncut: user 3 gets 1/7
    "MRR": [1.0, 1 / 3, 0.5, 1 / 7],
}


@pytest.mark.parametrize("name", sorted(EXPECTED_AT_3))
def test_hand_computed_values_at_3(name: str) -> None:
    values = compute(RANKS, [name])[name]
    assert values.tolist() == pytest.approx(EXPECTED_AT_3[name], abs=1e-12)
    assert values.dtype == torch.float64


def test_hand_computed_values_at_5_with_two_hits() -> None:
    ranks = torch.tensor([[2.0, 5.0, 6.0]])  # 3 relevant; ranks 2 and 5 are in the top 5
    got = {name: float(v) for name, v in compute(ranks, ["MAP@5", "NDCG@5", "Precision@5"]).items()}
    # AP: (1/2 + 2/5) / min(3, 5) = 0.9 / 3
    assert got["MAP@5"] == pytest.approx(0.3)
    # DCG = 1/log2(3) + 1/log2(6) = 0.6309298 + 0.3868528; IDCG = 1 + 0.6309298 + 0.5
    assert got["NDCG@5"] == pytest.approx((1 / LOG2_3 + 1 / math.log2(6)) / (1.5 + 1 / LOG2_3))
    assert got["Precision@5"] == pytest.approx(0.4)  # 2 hits / 5


def test_more_relevant_than_cutoff_can_still_score_one() -> None:
    ranks = torch.tensor([[1.0, 2.0, 3.0, 4.0]])  # 4 relevant, perfect ranking, cutoff 2
    got = {name: float(v) for name, v in compute(ranks, ["MAP@2", "NDCG@2", "Recall@2"]).items()}
    assert got["MAP@2"] == 1.0  # (1/1 + 2/2) / min(4, 2)
    assert got["NDCG@2"] == pytest.approx(1.0)  # DCG = IDCG with min(4, 2) = 2 items
    assert got["Recall@2"] == 0.5  # 2 of 4


def test_ranks_from_scores_tie_rule_and_candidates() -> None:
    scores = torch.tensor([[0.9, 0.5, 0.5, 0.1, 0.5]])
    relevant = torch.tensor([[False, False, True, False, True]])
    # column 2: beaten by 0.9 (col 0) and the tied non-relevant col 1 -> rank 3
    # column 4: cols 0 and 1, plus the tied relevant col 2 with a smaller index -> rank 4
    assert ranks_from_scores(scores, relevant).tolist() == [[3.0, 4.0]]
    candidate = torch.tensor([[False, True, True, True, True]])  # col 0 is history
    assert ranks_from_scores(scores, relevant, candidate).tolist() == [[2.0, 3.0]]


def test_relevant_item_in_history_still_competes() -> None:
    scores = torch.tensor([[3.0, 2.0, 1.0]])
    relevant = torch.tensor([[False, True, False]])
    candidate = torch.tensor([[False, False, True]])  # the target itself is flagged as history
    assert ranks_from_scores(scores, relevant, candidate).tolist() == [[1.0]]


def test_constant_scores_get_the_worst_ranks() -> None:
    scores = torch.zeros(2, 5)
    relevant = torch.tensor([[False, False, True, False, False], [False, True, False, True, False]])
    ranks = ranks_from_scores(scores, relevant)
    assert ranks.tolist() == [[5.0, INF], [4.0, 5.0]]
    assert ranks.dtype == torch.float32


def test_counts_across_column_blocks_beyond_int16() -> None:
    n_items = 2 * ranking._BLOCK + 7000  # 39768 > 32767, spans three blocks
    scores = torch.zeros(2, n_items)
    scores[1] = torch.linspace(0.0, 1.0, n_items)
    relevant = torch.zeros(2, n_items, dtype=torch.bool)
    relevant[0, 0] = True  # all tied: the worst rank
    relevant[1, 100] = True  # ascending scores: items 101.. score higher
    assert ranks_from_scores(scores, relevant).tolist() == [[n_items], [n_items - 100]]


def test_empty_batch_gives_no_ranks() -> None:
    ranks = ranks_from_scores(torch.zeros(0, 4), torch.zeros(0, 4, dtype=torch.bool))
    assert ranks.shape == (0, 0)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(scored_batches())
def test_ranks_from_scores_matches_sorting(batch: tuple) -> None:
    scores, relevant, candidate = batch
    ranks = ranks_from_scores(
        torch.tensor(scores),
        torch.tensor(relevant),
        None if candidate is None else torch.tensor(candidate),
    )
    for row in range(len(scores)):
        expected = reference_ranks(
            scores[row], relevant[row], None if candidate is None else candidate[row]
        )
        got = ranks[row].tolist()
        assert got[: len(expected)] == expected
        assert all(r == INF for r in got[len(expected) :])


@settings(max_examples=100, derandomize=True, deadline=None)
@given(scored_batches(), st.integers(1, 10))
def test_metrics_match_textbook_definitions(batch: tuple, k: int) -> None:
    scores, relevant, candidate = batch
    ranks = ranks_from_scores(
        torch.tensor(scores),
        torch.tensor(relevant),
        None if candidate is None else torch.tensor(candidate),
    ).double()
    names = [f"{base}@{k}" for base in REFERENCE]
    values = {name: v.tolist() for name, v in compute(ranks, [*names, "MRR"]).items()}
    for row in range(len(scores)):
        labels = ranked_labels(
            scores[row], relevant[row], None if candidate is None else candidate[row]
        )
        for base, reference in REFERENCE.items():
            assert values[f"{base}@{k}"][row] == pytest.approx(reference(labels, k), abs=1e-12)
        assert values["MRR"][row] == pytest.approx(REFERENCE["MRR"](labels, None))


def test_user_without_relevant_item_is_an_error() -> None:
    ranks = torch.tensor([[1.0, INF], [INF, INF]])
    with pytest.raises(ValueError, match=r"1 user\(s\) have no relevant item \(first: row 1\)"):
        ranking.ndcg(ranks, 10)
    with pytest.raises(ValueError, match="row 0 has none"):
        ranks_from_scores(torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.bool))


@pytest.mark.parametrize(
    ("ranks", "message"),
    [
        (torch.tensor([[2.0, 2.0]]), "must be distinct"),
        (torch.tensor([[0.0]]), "must be >= 1"),
        (torch.tensor([[math.nan]]), "must be >= 1"),
        (torch.tensor([[-INF]]), "must be >= 1"),
        (torch.tensor([1.0, 2.0]), "float tensor"),
        (torch.tensor([[1, 2]]), "float tensor"),
    ],
)
def test_invalid_ranks_are_rejected(ranks: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ranking.recall(ranks, 5)


def test_invalid_cutoff_is_rejected() -> None:
    with pytest.raises(ValueError, match="cutoff k must be an int >= 1"):
        ranking.hit_rate(torch.tensor([[1.0]]), 0)


def test_nan_scores_are_rejected() -> None:
    scores = torch.tensor([[1.0, 0.0], [0.0, math.nan]])
    relevant = torch.tensor([[True, False], [True, False]])
    with pytest.raises(ValueError, match=r"NaN .*row 1"):
        ranks_from_scores(scores, relevant)


def test_mask_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="relevant must be a bool tensor shaped like scores"):
        ranks_from_scores(torch.zeros(2, 3), torch.ones(2, 3))


def test_names_are_case_insensitive_and_keyed_as_given() -> None:
    values = compute(RANKS, ["ndcg@3", "Hr@3", "mrr"])
    assert list(values) == ["ndcg@3", "Hr@3", "mrr"]
    assert values["Hr@3"].tolist() == EXPECTED_AT_3["HR@3"]
    assert parse_metric_name("MAP@10") == (ranking.average_precision, 10)
    assert parse_metric_name("MRR") == (ranking.mrr, None)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("AUC@10", r"unknown metric 'AUC@10'; known metrics: HR@K, Recall@K, .*MRR"),
        ("NDCG10", "unknown metric"),
        ("HR", r"'HR' needs a cutoff, e.g. 'HR@10'"),
        ("Recall@0", "cutoff must be >= 1"),
    ],
)
def test_bad_metric_names(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute(RANKS, [name])
