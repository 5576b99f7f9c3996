"""Fully connected stacks of the CTR models, and Dice, DIN's data-adaptive activation.

``Dice`` follows the DIN paper (Zhou et al., KDD 2018): ``f(s) = p(s) s + (1 - p(s)) alpha s``
with ``p(s) = sigmoid((s - E[s]) / sqrt(Var[s] + eps))``, the mean and variance taken over the
batch in training and as running averages in evaluation (a ``BatchNorm1d`` without affine
parameters), and ``alpha`` learned per unit, starting at 0. RecBole's ``Dice`` keeps ``alpha``
fixed at 0 and leaves out the normalisation, which makes it ``sigmoid(s) * s``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = ("sigmoid", "relu", "prelu", "dice", "none")


class Dice(nn.Module):
    """DIN's Dice over the last dimension of any (..., size) input."""

    def __init__(self, size: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(size, eps=eps, affine=False)
        self.alpha = nn.Parameter(torch.zeros(size))

    def forward(self, x: Tensor) -> Tensor:
        if self.training:  # batch statistics over every leading position, running ones updated
            normed = self.norm(x.reshape(-1, x.shape[-1])).view_as(x)
        else:  # the running statistics, elementwise (also what an exported graph computes)
            norm = self.norm
            normed = (x - norm.running_mean) * torch.rsqrt(norm.running_var + norm.eps)
        p = torch.sigmoid(normed)
        return x * (p + (1.0 - p) * self.alpha)


class PReLU(nn.PReLU):
    """``nn.PReLU`` with one slope per unit of the *last* dimension (``nn.PReLU`` uses dim 1)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.reshape(-1, self.num_parameters)).view_as(x)


def activation_layer(name: str, size: int) -> nn.Module:
    """One of ``ACTIVATIONS`` for ``size`` units (PReLU learns one slope per unit)."""
    if name == "none":
        return nn.Identity()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "relu":
        return nn.ReLU()
    if name == "prelu":
        return PReLU(size)
    if name == "dice":
        return Dice(size)
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")


class MLP(nn.Module):
    """``in_size -> hidden sizes -> out_size``: Linear, activation, dropout per hidden layer, then
    a last Linear without activation. Works on any (..., in_size) input.

    With ``activation="none"`` and no dropout (RecBole's DIEN auxiliary network) the stack is
    one linear map, and it is computed as that map: the product of the layers' weights, formed
    once per call, so the parameters and their gradients are the stack's while the input is
    multiplied only once.
    """

    def __init__(
        self,
        in_size: int,
        hidden_sizes: Sequence[int],
        out_size: int = 1,
        activation: str = "sigmoid",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for size in hidden_sizes:
            layers.append(nn.Linear(in_size, size))
            if activation != "none":
                layers.append(activation_layer(activation, size))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            in_size = size
        layers.append(nn.Linear(in_size, out_size))
        self.layers = nn.Sequential(*layers)
        self.linear_only = all(isinstance(layer, nn.Linear) for layer in layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.linear_only and len(self.layers) > 1:
            return F.linear(x, *self.composed())
        return self.layers(x)

    def composed(self) -> tuple[Tensor, Tensor]:
        """Weight (out, in) and bias (out,) of the stack of Linear layers as one map."""
        weight, bias = self.layers[-1].weight, self.layers[-1].bias
        for layer in reversed(self.layers[:-1]):  # W_k ... W_1, from the output side
            bias = bias + weight @ layer.bias
            weight = weight @ layer.weight
        return weight, bias


def xavier_init(module: nn.Module) -> None:
    """RecBole's initialisation of its CTR models: Xavier-normal weights, zero biases.

    Embedding rows at ``padding_idx`` are zeroed again afterwards.
    """
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            nn.init.xavier_normal_(sub.weight)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.Embedding):
            nn.init.xavier_normal_(sub.weight)
            if sub.padding_idx is not None:
                with torch.no_grad():
                    sub.weight[sub.padding_idx].zero_()
