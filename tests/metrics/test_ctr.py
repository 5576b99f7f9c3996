"""AUC, GAUC and LogLoss against brute force; the accumulator; bootstrap intervals over users."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqrec.metrics import CTRMetrics, auc, ctr_summary, gauc, group_auc, log_loss, summarise
from seqrec.metrics.ctr import ctr_resamples, ctr_seeds_summary


def pairwise_auc(scores: list[float], labels: list[int]) -> float:
    """Every (clicked, non-clicked) pair: 1 if the click scores higher, 1/2 on a tie."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    won = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return won / (len(pos) * len(neg))


def random_case(seed: int, n: int = 60, n_users: int = 7, levels: int = 5):
    """Integer-valued scores (many ties), random labels, users; every user has both classes."""
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, levels, (n,), generator=gen).float()
    labels = torch.randint(0, 2, (n,), generator=gen)
    users = torch.randint(0, n_users, (n,), generator=gen)
    users[: 2 * n_users] = torch.arange(n_users).repeat(2)
    labels[:n_users], labels[n_users : 2 * n_users] = 1, 0
    return scores, labels, users


@pytest.mark.parametrize("seed", range(8))
def test_auc_equals_the_pairwise_count_with_ties_as_half(seed: int) -> None:
    scores, labels, _ = random_case(seed)
    assert auc(scores, labels).item() == pytest.approx(
        pairwise_auc(scores.tolist(), labels.tolist())
    )


@pytest.mark.parametrize("seed", range(8))
def test_gauc_is_the_impression_weighted_mean_of_per_user_pairwise_aucs(seed: int) -> None:
    scores, labels, users = random_case(seed, levels=3)
    users[-3:] = 99  # one more user, with only non-clicked impressions: skipped
    labels[-3:] = 0
    per_user = group_auc(scores, labels, users)
    total = weight = 0.0
    for i, user in enumerate(per_user.groups.tolist()):
        rows = (users == user).nonzero().flatten()
        s, y = scores[rows].tolist(), labels[rows].tolist()
        if 0 < sum(y) < len(y):
            value = pairwise_auc(s, y)
            assert per_user.auc[i].item() == pytest.approx(value)
            total, weight = total + len(y) * value, weight + len(y)
        else:
            assert math.isnan(per_user.auc[i].item())
    assert per_user.skipped == 1
    assert gauc(scores, labels, users).item() == pytest.approx(total / weight)


def test_auc_of_perfect_reversed_and_constant_scores() -> None:
    labels = torch.tensor([1, 1, 0, 0, 0])
    assert auc(torch.tensor([5.0, 4, 3, 2, 1]), labels) == 1.0
    assert auc(torch.tensor([1.0, 2, 3, 4, 5]), labels) == 0.0
    assert auc(torch.zeros(5), labels) == 0.5
    assert auc(torch.tensor([-math.inf, 1, 0, 0, 0]), labels) == 0.5  # -inf loses every pair


def test_log_loss_is_the_mean_bce_with_clipping() -> None:
    probs = torch.tensor([0.9, 0.2, 1.0, 0.0])
    labels = torch.tensor([1, 0, 0, 0])
    top = 1 - 1e-15  # 1.0 is clipped to 1 - 1e-15 and 0.0 to 1e-15, in float64
    expected = -(math.log(0.9) + math.log(0.8) + math.log1p(-top) + math.log1p(-1e-15)) / 4
    assert log_loss(probs, labels).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="probabilities in"):
        log_loss(torch.tensor([1.5, 0.2]), torch.tensor([1, 0]))


def test_bad_inputs_are_errors() -> None:
    with pytest.raises(ValueError, match="one clicked and one non-clicked"):
        auc(torch.rand(4), torch.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        auc(torch.tensor([0.1, math.nan]), torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="0 or 1"):
        auc(torch.rand(2), torch.tensor([2, 0]))
    with pytest.raises(ValueError, match="no user has both"):
        gauc(torch.rand(3), torch.tensor([1, 0, 1]), torch.tensor([0, 1, 2]))


def test_accumulator_equals_the_pure_functions_whatever_the_batches() -> None:
    scores, labels, users = random_case(3, n=90)
    probs = torch.sigmoid(scores - 2)
    names = ["AUC", "gauc", "LogLoss"]
    metric, other = CTRMetrics(names), CTRMetrics(names)
    for part in (slice(0, 10), slice(10, 50)):
        metric.update(probs[part], labels[part], users[part])
    other.update(probs[50:], labels[50:], users[50:])
    metric.merge_state(other)  # the concatenation DDP performs when it syncs states
    result = metric.compute()
    assert result["AUC"] == auc(probs, labels)
    assert result["GAUC"] == gauc(probs, labels, users)
    assert result["LogLoss"].item() == pytest.approx(log_loss(probs, labels).item(), abs=1e-12)
    assert all(
        metric._reductions[s].__name__ == "dim_zero_cat" for s in ("scores", "labels", "groups")
    )


def resample(counts: np.ndarray, scores, labels, users):
    """The impressions of a resample drawn explicitly: user u's rows repeated counts[u] times."""
    parts = [np.flatnonzero(users.numpy() == u) for u in range(len(counts))]
    rows = np.concatenate([part for u, part in enumerate(parts) for _ in range(int(counts[u]))])
    return scores[rows], labels[rows], users[rows]


def test_bootstrap_resamples_recompute_each_metric_on_the_resampled_users(monkeypatch) -> None:
    """Each resample's pooled AUC / GAUC / LogLoss equals the metric of the explicitly resampled
    impressions (pooled AUC re-sorted from scratch)."""
    from seqrec.metrics import ctr

    scores, labels, users = random_case(4, n=50, n_users=6, levels=4)
    probs = torch.sigmoid(scores - 1.5)
    captured = []
    original = ctr._resample_counts

    def spy(n_users, n_resamples, seed):
        for counts in original(n_users, n_resamples, seed):
            captured.append(counts)
            yield counts

    monkeypatch.setattr(ctr, "_resample_counts", spy)
    names = ["AUC", "GAUC", "LogLoss"]
    order = np.argsort(probs.numpy(), kind="stable")
    starts = ctr._tie_blocks(probs)[2].numpy()
    counts = np.concatenate(list(original(6, 5, seed=0)))  # the draws ctr_summary makes
    pooled = ctr._pooled_auc_resampled(counts, users.numpy()[order], labels.numpy()[order], starts)
    for r in range(5):
        s, y, _ = resample(counts[r], probs, labels, users)
        if 0 < int(y.sum()) < len(y):
            assert pooled[r] == pytest.approx(auc(s, y).item())
    summary = ctr_summary(probs, labels, users, names, n_resamples=5)
    assert len(captured) == 1 and captured[0].shape == (5, 6)
    for name in names:
        assert summary[name]["ci_low"] <= summary[name]["mean"] <= summary[name]["ci_high"]
        assert summary[name]["n"] == 6
    assert summary["GAUC"]["skipped"] == 0


def test_ratio_metrics_under_resampling_equal_the_resampled_data() -> None:
    from seqrec.metrics import ctr

    scores, labels, users = random_case(5, n=40, n_users=5, levels=6)
    probs = torch.sigmoid(scores - 2.5)
    counts = next(ctr._resample_counts(5, 3, seed=1))
    per_user = group_auc(probs, labels, users)
    impressions = per_user.impressions.double().numpy()
    for r in range(3):
        s, y, u = resample(counts[r], probs, labels, users)
        weighted = (counts[r] * impressions * per_user.auc.numpy()).sum()
        assert weighted / (counts[r] * impressions).sum() == pytest.approx(gauc(s, y, u).item())
        assert log_loss(s, y).item() == pytest.approx(
            float(np.bincount(users.numpy(), ctr._log_losses(probs, labels).numpy()) @ counts[r])
            / float(counts[r] @ impressions)
        )


def test_intervals_share_the_draws_of_the_ranking_metrics() -> None:
    """Equal impressions per user: GAUC is the plain mean of per-user AUCs, so its interval
    must equal summarise's on the same values, draw for draw."""
    gen = torch.Generator().manual_seed(6)
    n_users, per = 40, 11
    users = torch.arange(n_users).repeat_interleave(per)
    labels = torch.zeros(n_users * per, dtype=torch.long)
    labels[::per] = 1
    scores = torch.rand(n_users * per, generator=gen)
    summary = ctr_summary(scores, labels, users, ["GAUC"], n_resamples=200, seed=3)
    per_user = group_auc(scores, labels, users).auc.numpy()
    reference = summarise({"x": per_user}, n_resamples=200, seed=3)["x"]
    assert summary["GAUC"]["ci_low"] == pytest.approx(reference["ci_low"])
    assert summary["GAUC"]["ci_high"] == pytest.approx(reference["ci_high"])
    assert summary["GAUC"]["mean"] == pytest.approx(reference["mean"])


def test_several_seeds_average_each_seeds_metric_and_each_resample() -> None:
    """The CTR metrics of a seed mean: the mean of the seeds' values, and an interval from the
    same user resamples averaged over the seeds (so identical seeds give one seed's interval)."""
    names = ["AUC", "GAUC", "LogLoss"]
    _, labels, users = random_case(3)
    gen = torch.Generator().manual_seed(9)
    seeds = [(torch.rand(len(labels), generator=gen), labels, users) for _ in range(3)]
    single = ctr_summary(*seeds[0], names, n_resamples=300, seed=2)
    same = ctr_seeds_summary(seeds[:1] * 3, names, n_resamples=300, seed=2)
    assert {n: pytest.approx(v, abs=1e-12) for n, v in single.items()} == same
    combined = ctr_seeds_summary(seeds, names, n_resamples=300, seed=2)
    each = [ctr_summary(*s, names, n_resamples=300, seed=2) for s in seeds]
    for name in names:
        assert combined[name]["mean"] == pytest.approx(np.mean([e[name]["mean"] for e in each]))
        resampled = np.mean(
            [ctr_resamples(*s, [name], 300, 2).resampled[name] for s in seeds], axis=0
        )
        low, high = np.nanquantile(resampled, [0.025, 0.975])
        assert (combined[name]["ci_low"], combined[name]["ci_high"]) == (low, high)
