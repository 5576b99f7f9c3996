import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from metrics_brute_force import REFERENCE, ranked_labels, scored_batches

from seqrec.metrics import (
    AvgPrecisionAt,
    DCGAt,
    MeanReciprocalRankAt,
    NDCGAt,
    PrecisionAt,
    RecallAt,
)

CLASSES = {
    "Precision": PrecisionAt,
    "Recall": RecallAt,
    "MAP": AvgPrecisionAt,
    "DCG": DCGAt,
    "NDCG": NDCGAt,
    "MRR": MeanReciprocalRankAt,
}
TOP_KS = [1, 3, 5]


def brute_force_means(scores: list, relevant: list, base: str) -> list[float]:
    labels = [ranked_labels(s, r) for s, r in zip(scores, relevant, strict=True)]
    return [sum(REFERENCE[base](row, k) for row in labels) / len(labels) for k in TOP_KS]


@settings(max_examples=30, derandomize=True, deadline=None)
@given(scored_batches(max_users=5, max_items=8))
def test_onehot_targets_match_brute_force(batch: tuple) -> None:
    scores, relevant, _ = batch
    for base, cls in CLASSES.items():
        metric = cls(top_ks=TOP_KS)  # Transformers4Rec's default: target is a 0/1 matrix
        metric.update(torch.tensor(scores), torch.tensor(relevant, dtype=torch.float32))
        result = metric.compute()
        assert result.shape == (len(TOP_KS),)
        assert result.tolist() == pytest.approx(brute_force_means(scores, relevant, base))


@settings(max_examples=30, derandomize=True, deadline=None)
@given(scored_batches(max_users=5, max_items=8), st.data())
def test_index_targets_match_brute_force(batch: tuple, data: st.DataObject) -> None:
    scores, _, _ = batch
    n_items = len(scores[0])
    target = [data.draw(st.integers(0, n_items - 1)) for _ in scores]
    relevant = [[item == t for item in range(n_items)] for t in target]
    for base, cls in CLASSES.items():
        metric = cls(top_ks=TOP_KS, labels_onehot=True)  # indices, converted to one-hot
        metric.update(torch.tensor(scores), torch.tensor(target))
        assert metric.compute().tolist() == pytest.approx(brute_force_means(scores, relevant, base))


def test_averages_over_users_of_all_batches() -> None:
    # users 0-1 in the first batch, user 2 in the second; target ranks 1, 3, 2 (no ties)
    metric = MeanReciprocalRankAt(top_ks=[2, 3], labels_onehot=True)
    metric.update(torch.tensor([[0.9, 0.1, 0.5], [0.9, 0.1, 0.5]]), torch.tensor([0, 1]))
    metric.update(torch.tensor([[0.9, 0.1, 0.5]]), torch.tensor([2]))
    # MRR@2 = (1 + 0 + 1/2) / 3; MRR@3 = (1 + 1/3 + 1/2) / 3
    assert metric.compute().tolist() == pytest.approx([0.5, (1 + 1 / 3 + 0.5) / 3])


def test_default_cutoffs_are_2_and_5() -> None:
    metric = RecallAt(labels_onehot=True)
    metric.update(torch.tensor([[0.0, 3.0, 2.0, 1.0, 0.5, 0.2]]), torch.tensor([3]))
    assert metric.top_ks == (2, 5)
    assert metric.compute().tolist() == [0.0, 1.0]  # target ranked 3rd


def test_target_form_must_match_the_flag() -> None:
    preds = torch.rand(2, 4)
    with pytest.raises(ValueError, match=r"pass labels_onehot=True for \(B,\) item indices"):
        NDCGAt().update(preds, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"pass labels_onehot=False for a \(B, n_items\)"):
        NDCGAt(labels_onehot=True).update(preds, torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\)"):
        NDCGAt(labels_onehot=True).update(preds, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="only 0 and 1"):
        NDCGAt().update(preds, torch.full((2, 4), 2.0))


def test_bad_cutoffs_are_rejected() -> None:
    with pytest.raises(ValueError, match="top_ks must be a non-empty list of ints >= 1"):
        DCGAt(top_ks=[0, 5])


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_compute_before_update_is_an_error() -> None:
    with pytest.raises(ValueError, match="PrecisionAt has no users yet"):
        PrecisionAt().compute()
