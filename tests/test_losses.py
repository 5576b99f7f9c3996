"""Losses: chunked full softmax against PyTorch's, gBCE's beta, negative sampling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqrec.losses import full_softmax_ce, gbce, gbce_beta, sampled_bce, uniform_negatives


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


def test_gbce_is_the_beta_power_of_the_positive_probability() -> None:
    pos = torch.tensor([0.3, -1.2])
    neg = torch.tensor([[0.5, -0.1], [2.0, 0.0]])
    expected = -(torch.sigmoid(pos) ** 0.4).log() - (1 - torch.sigmoid(neg)).log().sum(-1)
    torch.testing.assert_close(gbce(pos, neg, 0.4), expected.mean())
    bce = F.binary_cross_entropy_with_logits(pos, torch.ones(2), reduction="none")
    bce = bce + F.binary_cross_entropy_with_logits(neg, torch.zeros(2, 2), reduction="none").sum(-1)
    torch.testing.assert_close(sampled_bce(pos, neg), bce.mean())


def test_negatives_are_uniform_over_the_other_items() -> None:
    targets = torch.tensor([1, 5, 10] * 2000)
    negatives = uniform_negatives(targets, 10, 4, torch.Generator().manual_seed(0))
    assert (negatives != targets[:, None]).all()
    assert negatives.min() >= 1 and negatives.max() <= 10
    counts = torch.bincount(negatives[targets == 5].flatten(), minlength=11)[1:].float()
    assert counts[4] == 0
    others = torch.cat([counts[:4], counts[5:]])
    assert (others / others.sum() - 1 / 9).abs().max() < 0.01
