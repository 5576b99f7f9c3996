"""Dice against the paper's formula, PReLU per unit, and the linear-only MLP as one map."""

from __future__ import annotations

import pytest
import torch

from seqrec.nn.mlp import MLP, Dice, PReLU, activation_layer


def test_dice_is_the_papers_formula_in_training_and_in_evaluation() -> None:
    torch.manual_seed(0)
    dice = Dice(4)
    with torch.no_grad():
        dice.alpha.copy_(torch.tensor([0.0, 0.25, -0.5, 1.0]))
    x = torch.randn(3, 5, 4) * 2 + 1
    flat = x.reshape(-1, 4)
    mean, var = flat.mean(0), flat.var(0, unbiased=False)
    p = torch.sigmoid((x - mean) / torch.sqrt(var + 1e-8))
    torch.testing.assert_close(dice(x), p * x + (1 - p) * dice.alpha * x)
    dice.eval()  # running statistics instead of the batch's
    running_mean, running_var = dice.norm.running_mean, dice.norm.running_var
    p = torch.sigmoid((x - running_mean) / torch.sqrt(running_var + 1e-8))
    torch.testing.assert_close(dice(x), p * x + (1 - p) * dice.alpha * x)


def test_prelu_has_one_slope_per_unit_of_the_last_dimension() -> None:
    prelu = PReLU(3)
    with torch.no_grad():
        prelu.weight.copy_(torch.tensor([0.1, 0.2, 0.3]))
    x = -torch.ones(2, 4, 3)
    assert torch.equal(prelu(x)[1, 2], torch.tensor([-0.1, -0.2, -0.3]))


def test_a_linear_only_mlp_equals_its_stack_of_layers() -> None:
    torch.manual_seed(1)
    mlp = MLP(5, (7, 6), 2, activation="none")
    assert mlp.linear_only and all(isinstance(m, torch.nn.Linear) for m in mlp.layers)
    x = torch.randn(4, 3, 5)
    torch.testing.assert_close(mlp(x), mlp.layers(x))
    (mlp(x) ** 2).sum().backward()
    composed = [p.grad.clone() for p in mlp.parameters()]
    mlp.zero_grad()
    (mlp.layers(x) ** 2).sum().backward()
    for grad, param in zip(composed, mlp.parameters(), strict=True):
        torch.testing.assert_close(grad, param.grad)  # the same parameters, the same gradients


def test_unknown_activation_is_an_error() -> None:
    with pytest.raises(ValueError, match="activation must be one of"):
        activation_layer("gelu", 3)
