"""Losses: chunked full softmax against PyTorch's, gBCE's beta, negative sampling, BPR-max and
TOP1-max against their formulas, GRU4Rec's popularity pool."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seqrec.losses import (
    bpr_max,
    full_softmax_ce,
    gbce,
    gbce_beta,
    sample_pool,
    sampled_bce,
    sampling_weights,
    top1_max,
    uniform_negatives,
    unseen_negatives,
)


@pytest.mark.parametrize("with_bias", [True, False])
def test_chunked_softmax_equals_the_dense_one_in_value_and_gradients(with_bias: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(37, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(50, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(50, generator=gen, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 50, (37,), generator=gen)
    b = bias if with_bias else None
    dense = F.cross_entropy(F.linear(hidden, weight, b), targets)
    expected = torch.autograd.grad(dense, [hidden, weight, *([bias] if with_bias else [])])
    chunked = full_softmax_ce(hidden, weight, b, targets, max_logits=50 * 6)  # chunks of 6
    actual = torch.autograd.grad(chunked, [hidden, weight, *([bias] if with_bias else [])])
    torch.testing.assert_close(chunked, dense)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e)


def test_gbce_beta_spans_bce_to_the_calibrated_alpha() -> None:
    assert gbce_beta(256, 3417, 0.0) == pytest.approx(1.0)
    assert gbce_beta(256, 3417, 1.0) == pytest.approx(256 / 3416)
    assert gbce_beta(256, 3417, 0.75) == pytest.approx(
        256 / 3416 * (0.75 * (1 - 3416 / 256) + 3416 / 256)
    )
    with pytest.raises(ValueError, match="calibration t must be in"):
        gbce_beta(1, 10, 1.5)


def gsasrec_reference(pos: torch.Tensor, neg: torch.Tensor, beta: float) -> torch.Tensor:
    """gSASRec's loss as its reference code computes it: transformed positive logit, BCE mean."""
    eps = 1e-10
    p = torch.sigmoid(pos.double()).clamp(eps, 1 - eps)
    adjusted = p.pow(-beta).clamp(1 + eps, torch.finfo(torch.float64).max)
    transformed = (1.0 / (adjusted - 1)).clamp(eps, torch.finfo(torch.float64).max).log()
    logits = torch.cat([transformed[:, None], neg.double()], dim=1)  # (N, 1 + k)
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1.0
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(-1).mean()


def test_gbce_equals_the_reference_codes_computation() -> None:
    gen = torch.Generator().manual_seed(3)
    pos, neg = torch.randn(50, generator=gen), torch.randn(50, 4, generator=gen) * 2
    for beta in (1.0, 0.4, 0.05):
        expected = gsasrec_reference(pos, neg, beta).float()
        torch.testing.assert_close(gbce(pos, neg, beta), expected, rtol=1e-5, atol=1e-6)


def test_sampled_bce_sums_the_positive_and_negative_terms() -> None:
    pos = torch.tensor([0.3, -1.2])
    neg = torch.tensor([[0.5, -0.1], [2.0, 0.0]])
    bce = F.binary_cross_entropy_with_logits(pos, torch.ones(2), reduction="none")
    bce = bce + F.binary_cross_entropy_with_logits(neg, torch.zeros(2, 2), reduction="none").sum(-1)
    torch.testing.assert_close(sampled_bce(pos, neg), bce.mean())
    # gBCE at beta = 1 is the same per-target sum, averaged over the 1 + k logits instead
    torch.testing.assert_close(gbce(pos, neg, 1.0), bce.mean() / 3)


def test_unseen_negatives_avoid_each_rows_items_and_are_uniform_over_the_rest() -> None:
    seen = torch.tensor([[0, 0, 2, 4, 6], [1, 2, 3, 4, 5], [0, 0, 0, 0, 9]])
    draws = unseen_negatives(seen.repeat(500, 1), 10, 8, torch.Generator().manual_seed(0))
    assert draws.min() >= 1 and draws.max() <= 10
    for row in range(3):
        allowed = sorted(set(range(1, 11)) - set(seen[row].tolist()))
        counts = torch.bincount(draws[row::3].flatten(), minlength=11)
        assert counts[[i for i in range(1, 11) if i not in allowed]].sum() == 0
        share = counts[allowed].float() / counts.sum()
        assert (share - 1 / len(allowed)).abs().max() < 0.02
    with pytest.raises(ValueError, match="seen every item"):
        unseen_negatives(torch.arange(1, 11)[None], 10, 2)


def test_negatives_are_uniform_over_the_other_items() -> None:
    targets = torch.tensor([1, 5, 10] * 2000)
    negatives = uniform_negatives(targets, 10, 4, torch.Generator().manual_seed(0))
    assert (negatives != targets[:, None]).all()
    assert negatives.min() >= 1 and negatives.max() <= 10
    counts = torch.bincount(negatives[targets == 5].flatten(), minlength=11)[1:].float()
    assert counts[4] == 0
    others = torch.cat([counts[:4], counts[5:]])
    assert (others / others.sum() - 1 / 9).abs().max() < 0.01


# ---------------------------------------------------------------- BPR-max, TOP1-max, sampling


def _softmax(values: list[float]) -> list[float]:
    top = max(values)
    exp = [math.exp(v - top) for v in values]
    return [e / sum(exp) for e in exp]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def bpr_max_by_hand(pos, neg, bpreg, valid) -> float:
    """-log(sum_j s_j sigmoid(r_i - r_j)) + bpreg sum_j s_j r_j^2, s = softmax over valid j."""
    total = 0.0
    for i, r_i in enumerate(pos.tolist()):
        r = [r_j for r_j, ok in zip(neg[i].tolist(), valid[i].tolist(), strict=True) if ok]
        s = _softmax(r)
        ranking = sum(s_j * _sigmoid(r_i - r_j) for s_j, r_j in zip(s, r, strict=True))
        penalty = sum(s_j * r_j**2 for s_j, r_j in zip(s, r, strict=True))
        total += -math.log(ranking + 1e-24) + bpreg * penalty
    return total / len(pos)


def top1_max_by_hand(pos, neg, valid) -> float:
    """sum_j s_j (sigmoid(r_j - r_i) + sigmoid(r_j^2)), s = softmax over valid j."""
    total = 0.0
    for i, r_i in enumerate(pos.tolist()):
        r = [r_j for r_j, ok in zip(neg[i].tolist(), valid[i].tolist(), strict=True) if ok]
        s = _softmax(r)
        total += sum(
            s_j * (_sigmoid(r_j - r_i) + _sigmoid(r_j**2)) for s_j, r_j in zip(s, r, strict=True)
        )
    return total / len(pos)


def random_scores(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(6, generator=gen, dtype=torch.float64) * 2
    neg = torch.randn(6, 9, generator=gen, dtype=torch.float64) * 2
    valid = torch.rand(6, 9, generator=gen) > 0.3
    valid[:, 0] = True  # every row keeps a negative
    return pos, neg, valid


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bpr_max_is_its_formula(seed: int) -> None:
    pos, neg, valid = random_scores(seed)
    for bpreg in (0.0, 0.7):
        expected = bpr_max_by_hand(pos, neg, bpreg, valid)
        assert bpr_max(pos, neg, bpreg, valid).item() == pytest.approx(expected, rel=1e-10)
    everything = torch.ones_like(valid)
    assert bpr_max(pos, neg, 1.0).item() == pytest.approx(
        bpr_max_by_hand(pos, neg, 1.0, everything), rel=1e-10
    )


def test_bpr_max_regularisation_is_bpreg_times_the_weighted_squared_scores() -> None:
    pos, neg, valid = random_scores(3)
    penalty = bpr_max_by_hand(pos, neg, 1.0, valid) - bpr_max_by_hand(pos, neg, 0.0, valid)
    assert penalty > 0.5  # a sizeable part of the loss at these scores
    difference = bpr_max(pos, neg, 2.5, valid) - bpr_max(pos, neg, 0.0, valid)
    assert difference.item() == pytest.approx(2.5 * penalty, rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top1_max_is_its_formula(seed: int) -> None:
    pos, neg, valid = random_scores(seed)
    expected = top1_max_by_hand(pos, neg, valid)
    assert top1_max(pos, neg, valid).item() == pytest.approx(expected, rel=1e-10)


def test_invalid_negatives_do_not_count_and_their_gradient_is_zero() -> None:
    pos, neg, valid = random_scores(4)
    neg = neg.clone().requires_grad_(True)
    loss = bpr_max(pos, neg, 1.0, valid) + top1_max(pos, neg, valid)
    (grad,) = torch.autograd.grad(loss, neg)
    assert (grad[~valid] == 0).all() and (grad[valid] != 0).all()
    changed = neg.detach().masked_fill(~valid, 1e3)  # huge scores where not valid change nothing
    assert bpr_max(pos, changed, 1.0, valid).item() == pytest.approx(
        bpr_max(pos, neg, 1.0, valid).item(), rel=1e-12
    )


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_pool_frequencies_follow_counts_to_the_power_alpha(alpha: float) -> None:
    counts = torch.tensor([0.0, 1.0, 4.0, 9.0, 0.0, 16.0, 25.0])  # code 0 is padding
    weights = sampling_weights(counts, alpha)
    draws = sample_pool(weights, 400_000, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=7).double() / len(draws)
    expected = counts.double() ** alpha
    expected[0] = 0.0
    if alpha == 0.0:  # uniform over every item, also those never seen in training
        expected[1:] = 1.0
    expected /= expected.sum()
    assert freq[0] == 0
    torch.testing.assert_close(freq, expected, atol=3e-3, rtol=0)
    with pytest.raises(ValueError, match="sample_alpha must be >= 0"):
        sampling_weights(counts, -1.0)


def test_chunked_softmax_runs_under_bfloat16_autocast_in_float32() -> None:
    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(9, 8, generator=gen, requires_grad=True)
    weight = torch.randn(30, 8, generator=gen, requires_grad=True)
    targets = torch.randint(0, 30, (9,), generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        chunked = full_softmax_ce(hidden, weight, None, targets, max_logits=30 * 4)
    chunked.backward()
    assert chunked.dtype == torch.float32 and hidden.grad.dtype == torch.float32
    torch.testing.assert_close(chunked, F.cross_entropy(hidden @ weight.T, targets))


def test_chunked_softmax_without_gradients_gives_the_same_loss() -> None:
    gen = torch.Generator().manual_seed(3)
    hidden = torch.randn(20, 4, generator=gen, requires_grad=True)
    weight = torch.randn(30, 4, generator=gen, requires_grad=True)
    targets = torch.randint(0, 30, (20,), generator=gen)
    with torch.no_grad():
        evaluated = full_softmax_ce(hidden, weight, None, targets, max_logits=30 * 7)
    assert not evaluated.requires_grad
    trained = full_softmax_ce(hidden, weight, None, targets, max_logits=30 * 7)
    torch.testing.assert_close(evaluated, trained.detach())
    torch.testing.assert_close(evaluated, F.cross_entropy(hidden @ weight.T, targets))
