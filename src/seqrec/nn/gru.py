"""A GRU over left-padded sequences whose state is not touched by the padding.

Sequences are left-padded (newest item in the last column). The GRU has no bias terms, as
RecBole's GRU4Rec: with input 0 and state 0 every gate sees 0, the candidate state is tanh(0) = 0,
and the new state (1 - z) * 0 + z * 0 is exactly 0. So zeroing the inputs at padding columns keeps
the state at its initial value (zero) through the padding, bit for bit, and the same history gives
the same outputs whatever the amount of left padding, with one fused ``nn.GRU`` call over the
batch (no packing, no per-sequence work).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def uniform_(tensor: Tensor, fan_in: int, fan_out: int) -> Tensor:
    """GRU4Rec's initialisation: uniform in +-sqrt(6 / (fan_in + fan_out))."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return nn.init.uniform_(tensor, -bound, bound)


class LeftPaddedGRU(nn.Module):
    """``n_layers`` stacked GRU layers without biases; dropout ``dropout`` between layers.

    Weights are initialised per gate as in GRU4Rec's official code (uniform, Glorot bound of the
    gate's own input and output sizes).
    """

    def __init__(self, input_size: int, hidden_size: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.gru = nn.GRU(
            input_size, hidden_size, n_layers, bias=False, batch_first=True,
            dropout=dropout if n_layers > 1 else 0.0,
        )  # fmt: skip
        with torch.no_grad():
            for weight in self.gru.parameters():  # weight_ih_l*, weight_hh_l*: (3H, fan_in)
                fan_in = weight.shape[1]
                for gate in weight.view(3, hidden_size, fan_in):  # reset, update, new
                    uniform_(gate, fan_in, hidden_size)

    def forward(self, inputs: Tensor, padding: Tensor) -> Tensor:
        """Outputs of the last layer (B, L, H) for inputs (B, L, I); ``padding`` (B, L) True at
        padding columns, where the inputs are replaced by zeros (the outputs there are zero)."""
        zeroed = inputs.masked_fill(padding.unsqueeze(-1), 0.0)
        return self.gru(zeroed)[0]
