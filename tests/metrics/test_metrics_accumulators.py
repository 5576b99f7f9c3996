import math

import pytest
import torch

from seqrec.metrics import RankingMetrics, compute

NAMES = ["HR@5", "Recall@5", "Precision@3", "MAP@5", "NDCG@5", "DCG@10", "MRR@5", "MRR"]


def random_ranks(n_users: int, seed: int) -> torch.Tensor:
    """(n_users, 4) distinct ranks in 1..20 with 1-4 relevant items per user, inf padded."""
    generator = torch.Generator().manual_seed(seed)
    ranks = torch.stack([torch.randperm(20, generator=generator)[:4] + 1 for _ in range(n_users)])
    n_relevant = torch.randint(1, 5, (n_users,), generator=generator)
    padding = torch.arange(4) >= n_relevant[:, None]  # (U, 4)
    return ranks.double().masked_fill(padding, math.inf)


def batches(ranks: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """Split users into batches, each trimmed to its own widest row (as a real batch would be)."""
    out = []
    for part in ranks.split(sizes):
        width = int(torch.isfinite(part).sum(1).max())
        out.append(part.sort(1).values[:, :width])
    return out


def test_batch_split_does_not_change_results() -> None:
    ranks = random_ranks(50, seed=0)
    whole = RankingMetrics(NAMES)
    whole.update(ranks)
    split = RankingMetrics(NAMES)
    for part in batches(ranks, [1, 7, 20, 22]):
        split.update(part)
    assert split.compute().keys() == whole.compute().keys()
    for name in NAMES:
        assert torch.equal(split.compute()[name], whole.compute()[name])
        assert torch.equal(split.per_user()[name], whole.per_user()[name])


def test_compute_is_the_mean_of_the_pure_functions() -> None:
    ranks = random_ranks(30, seed=1)
    metric = RankingMetrics(NAMES)
    for part in batches(ranks, [10, 10, 10]):
        metric.update(part)
    expected = compute(ranks, NAMES)
    result = metric.compute()
    for name in NAMES:
        assert result[name].item() == pytest.approx(expected[name].mean().item(), abs=1e-12)
        assert metric.per_user()[name].shape == (30,)


def test_merged_process_states_cover_every_user() -> None:
    ranks = random_ranks(40, seed=2)
    first, second = RankingMetrics(NAMES), RankingMetrics(NAMES)
    first.update(ranks[:25])
    second.update(batches(ranks[25:], [15])[0])
    first.merge_state(second)  # the same concatenation DDP performs when it syncs states
    reference = compute(ranks, NAMES)
    for name in NAMES:
        assert first.per_user()[name].shape == (40,)
        assert first.compute()[name].item() == pytest.approx(reference[name].mean().item())


def test_reset_forgets_users() -> None:
    metric = RankingMetrics(["HR@1"])
    metric.update(torch.tensor([[1.0], [2.0]]))
    metric.reset()
    metric.update(torch.tensor([[2.0]]))
    assert metric.compute()["HR@1"].item() == 0.0
    assert metric.per_user()["HR@1"].tolist() == [0.0]


def test_unknown_name_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown metric 'nDCG@x'"):
        RankingMetrics(["HR@10", "nDCG@x"])


def test_duplicate_or_missing_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="must be unique"):
        RankingMetrics(["HR@10", "HR@10"])
    with pytest.raises(ValueError, match="non-empty list"):
        RankingMetrics("HR@10")


def test_per_user_before_update_is_an_error() -> None:
    with pytest.raises(ValueError, match="call update"):
        RankingMetrics(["MRR"]).per_user()
