"""Recommender: the evaluation path's ranking for any history, raw ids in and out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from serving_models import CASE_IDS, CASES, MAX_LEN, N_ITEMS, item_ids, small_model

from seqrec.batch import SequenceBatch
from seqrec.data.batching import pad_left
from seqrec.data.corpus import Sequences
from seqrec.data.splits import EvalSet
from seqrec.errors import ArgumentError
from seqrec.evaluation.evaluator import Evaluator
from seqrec.evaluation.protocols import FullRanking
from seqrec.serving.queries import UnknownItemError, input_widths
from seqrec.serving.recommender import Recommender

RAW = item_ids()
LENGTHS = (1, 2, 5, 8, 9, 13, 20)  # one width and several, shorter and longer than MAX_LEN


def histories(seed: int = 0) -> list[list[int]]:
    """Item codes, oldest first; items may repeat, as in real histories."""
    gen = np.random.default_rng(seed)
    return [gen.integers(1, N_ITEMS + 1, size=n).tolist() for n in LENGTHS]


def raw(codes: list[int]) -> list[str]:
    return [RAW[c - 1] for c in codes]


def code_of(raw_id: str) -> int:
    return RAW.index(raw_id) + 1


def evaluator_ranks(model, history: list[int], targets: list[int]) -> np.ndarray:
    """The evaluator's full-ranking rank of each target after ``history`` (history excluded)."""
    n = len(targets)
    lengths = np.full(n, len(history))
    context = Sequences(np.concatenate([[0], np.cumsum(lengths)]), np.tile(history, n))
    target_rows = Sequences(np.arange(n + 1), np.asarray(targets, dtype=np.int64))
    eval_set = EvalSet(np.arange(n), context, target_rows)
    evaluator = Evaluator(eval_set, FullRanking(exclude_history=True), N_ITEMS, batch_size=3)
    return evaluator.ranks(model)[:, 0]


@pytest.fixture(params=CASES, ids=CASE_IDS)
def case(request) -> tuple[str, dict]:
    return request.param


def test_the_top_k_is_the_evaluators_ranking_for_every_model(case) -> None:
    """Item j of the answer has rank j in the evaluator, for histories of every width.

    Ranks 1..k in order mean the answer is exactly the evaluator's top k. The small models have
    no tied scores, so the pessimistic tie rule of the evaluator does not come into play.
    """
    model = small_model(*case)
    recommender = Recommender(model, RAW)
    for history in histories():
        answer = recommender.recommend(raw(history), k=10)
        assert len(answer.items) == 10 and answer.unknown == []
        targets = [code_of(item) for item, _ in answer.items]
        assert not set(targets) & set(history)
        np.testing.assert_array_equal(evaluator_ranks(model, history, targets), np.arange(1, 11))


def test_scores_are_the_models_at_the_evaluators_input_width(case) -> None:
    model = small_model(*case)
    recommender = Recommender(model, RAW)
    for history in histories(1):
        answer = recommender.recommend(raw(history), k=5, exclude_seen=False)
        width = int(input_widths(np.array([len(history)]), model.max_len)[0])
        seqs = Sequences(np.array([0, len(history)]), np.array(history))
        item_seq = torch.from_numpy(pad_left(seqs, np.array([0]), width))
        with torch.no_grad():
            expected = model.full_sort_predict(SequenceBatch(item_seq=item_seq))[0]
        got = torch.tensor([s for _, s in answer.items])
        codes = torch.tensor([code_of(i) for i, _ in answer.items])
        torch.testing.assert_close(got, expected[codes].float(), rtol=1e-5, atol=1e-5)


def test_input_widths_follow_the_evaluator() -> None:
    for max_len in (1, 8, 50):
        lengths = np.arange(0, 120)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        context = Sequences(offsets, np.ones(offsets[-1], dtype=np.int64))
        eval_set = EvalSet(
            np.arange(len(lengths)), context, Sequences(np.arange(121), np.ones(120))
        )
        evaluator = Evaluator(eval_set, FullRanking(), N_ITEMS, batch_size=1000)
        expected = np.zeros(len(lengths), dtype=np.int64)
        for rows, width in evaluator._chunks(max_len):
            expected[rows] = width
        np.testing.assert_array_equal(input_widths(lengths, max_len), expected)


def test_recommend_many_equals_recommend_per_history(case) -> None:
    recommender = Recommender(small_model(*case), RAW)
    batch = [raw(h) for h in histories(2)]
    many = recommender.recommend_many(batch, k=7)
    for history, answer in zip(batch, many, strict=True):
        one = recommender.recommend(history, k=7)
        assert [i for i, _ in answer.items] == [i for i, _ in one.items]
        np.testing.assert_allclose(
            [s for _, s in answer.items], [s for _, s in one.items], rtol=1e-5, atol=1e-6
        )


def test_unknown_ids_are_dropped_and_reported_or_rejected() -> None:
    recommender = Recommender(small_model("sasrec", {"architecture": "recbole"}), RAW)
    history = raw([3, 5, 9])
    answer = recommender.recommend(["nope", *history, "42x"], k=5, candidates=[RAW[0], "zz"])
    assert answer.unknown == ["nope", "42x"] and answer.unknown_candidates == ["zz"]
    assert answer.items == recommender.recommend(history, k=5, candidates=[RAW[0]]).items
    with pytest.raises(UnknownItemError, match=r"history: 'nope', '42x' \(2 unknown\)"):
        recommender.recommend(["nope", *history, "42x"], unknown="reject")
    with pytest.raises(UnknownItemError, match="candidates: 'zz'"):
        recommender.recommend(history, candidates=["zz"], unknown="reject")


def test_a_long_history_keeps_the_newest_items() -> None:
    model = small_model("bert4rec")
    recommender = Recommender(model, RAW)
    newest = raw(histories(3)[-1][-MAX_LEN:])
    older_a, older_b = raw([1, 2, 3, 4]), raw([20, 21, 22, 23])
    a = recommender.recommend(older_a + newest, k=N_ITEMS, exclude_seen=False)
    b = recommender.recommend(older_b + newest, k=N_ITEMS, exclude_seen=False)
    assert a.items == b.items  # the oldest items are not read
    oldest_kept = recommender.recommend(newest[:3] + older_a, k=N_ITEMS, exclude_seen=False)
    assert oldest_kept.items != a.items  # and the newest are


def test_seen_items_are_excluded_only_when_asked() -> None:
    recommender = Recommender(small_model("sasrec", {"architecture": "original"}), RAW)
    history = raw([4, 4, 7, 11])
    everything = recommender.recommend(history, k=N_ITEMS, exclude_seen=False)
    assert len(everything.items) == N_ITEMS and set(history) <= {i for i, _ in everything.items}
    unseen = recommender.recommend(history, k=N_ITEMS)
    assert [i for i, _ in unseen.items] == [i for i, _ in everything.items if i not in history]


def test_candidates_restrict_the_answer_to_their_order_in_the_full_ranking() -> None:
    recommender = Recommender(small_model("bert4rec"), RAW)
    history = raw([2, 9, 14])
    full = [i for i, _ in recommender.recommend(history, k=N_ITEMS).items]
    candidates = raw([1, 2, 5, 8, 13, 21, 30])  # 2 is in the history
    answer = recommender.recommend(history, k=4, candidates=candidates)
    assert [i for i, _ in answer.items] == [i for i in full if i in candidates][:4]
    few = recommender.recommend(history, k=10, candidates=candidates)
    assert len(few.items) == 6  # fewer than k candidates are left


def test_an_empty_history_gets_the_models_answer_for_padding() -> None:
    recommender = Recommender(small_model("sasrec", {"architecture": "recbole"}), RAW)
    answer = recommender.recommend(["unknown-only"], k=3)
    assert answer.unknown == ["unknown-only"] and len(answer.items) == 3
    assert answer.items == recommender.recommend([], k=3).items


def test_bad_arguments_are_clear_errors() -> None:
    recommender = Recommender(small_model("pop"), RAW)
    with pytest.raises(ArgumentError, match="k: expected a positive integer, got 0"):
        recommender.recommend(RAW[:2], k=0)
    with pytest.raises(ArgumentError, match="history: expected a list of item ids, got str"):
        recommender.recommend("123")  # not three ids "1", "2", "3"
    with pytest.raises(ArgumentError, match=r"candidates\[1\]: expected an item id"):
        recommender.recommend(RAW[:2], candidates=[RAW[0], 2.5])
    with pytest.raises(ValueError, match="unknown must be 'drop' or 'reject'"):
        recommender.recommend(RAW[:2], unknown="ignore")
    with pytest.raises(ValueError, match="29 item ids for a model of 30 items"):
        Recommender(small_model("pop"), RAW[:-1])


def test_popularity_answers_by_count_whatever_the_history() -> None:
    recommender = Recommender(small_model("pop"), RAW)  # item i was seen i times
    answer = recommender.recommend(raw([30, 1]), k=3)
    assert answer.items == [(RAW[28], 29.0), (RAW[27], 28.0), (RAW[26], 27.0)]
