"""Attention-gated GRUs of DIEN (Zhou et al., AAAI 2019) and a runner for padded sequences.

- ``AGRUCell``: the attention score replaces the update gate, ``h' = (1 - a) h + a h~``.
- ``AUGRUCell``: the attention score scales the update gate, ``u~ = a u``,
  ``h' = (1 - u~) o h + u~ o h~``.
- ``DynamicRNN``: GRU, AIGRU (GRU over attention-scaled inputs), AGRU or AUGRU over a batch of
  left- or right-padded sequences; each sequence starts from a zero state at its first real
  step and its state stops changing after its last, as a loop over that sequence alone would.

Both cells follow ``nn.GRUCell``'s formulas for the gates: ``r = sigmoid(W_ir x + b_ir + W_hr h
+ b_hr)``, ``u = sigmoid(W_iu x + b_iu + W_hu h + b_hu)``, ``h~ = tanh(W_ih x + b_ih + r o (W_hh h
+ b_hh))``, with ``u`` the weight of the candidate ``h~`` (the paper's notation; PyTorch's ``z``
weighs the old state, ``u = 1 - z``). Weights are stacked ``(W_r | W_u | W_h)`` as in RecBole; the
AGRU has no update gate and stores only ``(W_r | W_h)``. Differences, on purpose:

- RecBole initialises the cell weights from ``randn`` (standard normal); these cells draw them
  uniformly from ``+-1/sqrt(hidden_size)``, as ``nn.GRU`` does.
- The DIEN authors' code (``VecAttGRUCell``) computes ``(1 - a) z`` on TensorFlow's gate (which
  weighs the old state), so a score of 0 there gives a plain GRU step; here, as in the paper and
  RecBole, a score of 0 keeps the old state.
- ``DynamicRNN``'s plain GRU is an ``AUGRUCell`` whose score is 1 at real steps (exactly a GRU,
  in the paper's gate convention) rather than ``nn.GRU``: one time loop serves all four types,
  and its backward pass is cheaper on CPU than ``nn.GRU`` over packed sequences.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GRU_TYPES = ("GRU", "AIGRU", "AGRU", "AUGRU")
PaddingSide = Literal["left", "right"]


class _AttentionGRUCell(nn.Module):
    """Shared parameters and the input projection; subclasses define ``step``."""

    n_gates: int

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(self.n_gates * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(self.n_gates * hidden_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(self.n_gates * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(self.n_gates * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def project_input(self, input: Tensor) -> tuple[Tensor, Tensor]:
        """``W_i x + b_i`` for any leading shape, split into the gates' part (..., G) and the
        candidate's part (..., H). Done once per sequence, not once per step."""
        gi = F.linear(input, self.weight_ih, self.bias_ih)
        return gi[..., : -self.hidden_size], gi[..., -self.hidden_size :]

    def hidden_weights(self) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
        """``(W_h, b_h)`` of the gates and of the candidate, sliced once per sequence (slicing
        in every step would cost a full-size gradient buffer per step in the backward pass)."""
        cut = -self.hidden_size
        b = self.bias_hh
        return (
            self.weight_hh[:cut], None if b is None else b[:cut],
            self.weight_hh[cut:], None if b is None else b[cut:],
        )  # fmt: skip

    def forward(self, input: Tensor, hidden_output: Tensor, att_score: Tensor) -> Tensor:
        """Next state (N, H) from input (N, I), state (N, H) and attention score (N,) or (N, 1)."""
        a = att_score.reshape(*hidden_output.shape[:-1], 1)
        return self.step(self.project_input(input), hidden_output, a, self.hidden_weights())

    def step(
        self, gi: tuple[Tensor, Tensor], hidden_output: Tensor, a: Tensor, weights: tuple
    ) -> Tensor:
        """Next state from the projected input ``gi`` (``project_input``; broadcastable against
        the state (..., H)), the scores ``a`` (..., 1) and ``hidden_weights()``."""
        raise NotImplementedError


class AGRUCell(_AttentionGRUCell):
    """Attention-based GRU: ``h' = (1 - a) * h + a * h~``; the update gate is not computed."""

    n_gates = 2

    def step(
        self, gi: tuple[Tensor, Tensor], hidden_output: Tensor, a: Tensor, weights: tuple
    ) -> Tensor:
        w_r, b_r, w_h, b_h = weights
        reset = torch.sigmoid(gi[0] + F.linear(hidden_output, w_r, b_r))
        candidate = torch.tanh(gi[1] + reset * F.linear(hidden_output, w_h, b_h))
        return hidden_output + a * (candidate - hidden_output)


class AUGRUCell(_AttentionGRUCell):
    """GRU with attentional update gate: ``u~ = a * u``; ``h' = (1 - u~) o h + u~ o h~``."""

    n_gates = 3

    def step(
        self, gi: tuple[Tensor, Tensor], hidden_output: Tensor, a: Tensor, weights: tuple
    ) -> Tensor:
        w_ru, b_ru, w_h, b_h = weights
        gates = torch.sigmoid(gi[0] + F.linear(hidden_output, w_ru, b_ru))  # (..., 2H): r | u
        reset, update = gates.chunk(2, -1)
        candidate = torch.tanh(gi[1] + reset * F.linear(hidden_output, w_h, b_h))
        return hidden_output + (a * update) * (candidate - hidden_output)


def real_mask(lengths: Tensor, width: int, padding_side: PaddingSide = "left") -> Tensor:
    """True at the ``lengths`` real positions of each row of a padded (B, width) batch."""
    columns = torch.arange(width, device=lengths.device)
    if padding_side == "left":
        return columns >= width - lengths[:, None]  # (B, width)
    if padding_side == "right":
        return columns < lengths[:, None]
    raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")


class DynamicRNN(nn.Module):
    """One of GRU, AIGRU, AGRU, AUGRU over padded variable-length sequences.

    ``forward(inputs (B, T, I), lengths (B,), att_scores, padding_side)`` returns
    ``(outputs, last)``: the state after every real step (0 at padding) and each sequence's
    final state (0 for an empty one). ``att_scores`` (none for GRU) is (B, T), or (B, C, T) for
    ``C`` score sequences over the same inputs (one per candidate item); then ``outputs`` is
    (B, C, T, H) and ``last`` (B, C, H), and for AGRU/AUGRU the input projection is computed
    once for all ``C``.

    One loop over the time steps where some row is real, every row at once. A step changes a
    row's state only where the row is real: the step's score is 0 at padding (scores are
    multiplied by the padding mask, and GRU/AIGRU use score 1 at real steps), and with score 0
    both cells return the old state exactly.
    """

    def __init__(
        self, input_size: int, hidden_size: int, gru: str = "AUGRU", bias: bool = True
    ) -> None:
        super().__init__()
        if gru not in GRU_TYPES:
            raise ValueError(f"gru must be one of {', '.join(GRU_TYPES)}, got {gru!r}")
        self.gru, self.input_size, self.hidden_size = gru, input_size, hidden_size
        cell = AGRUCell if gru == "AGRU" else AUGRUCell
        self.rnn = cell(input_size, hidden_size, bias)

    def forward(
        self,
        inputs: Tensor,
        lengths: Tensor,
        att_scores: Tensor | None = None,
        padding_side: PaddingSide = "left",
    ) -> tuple[Tensor, Tensor]:
        if (self.gru == "GRU") != (att_scores is None):
            raise ValueError(f"{self.gru} takes attention scores if and only if it is not GRU")
        real = real_mask(lengths, inputs.shape[1], padding_side).to(inputs.dtype)  # (B, T)
        several = att_scores is not None and att_scores.dim() == 3
        if att_scores is None:
            scores = real.unsqueeze(1)  # (B, 1, T)
        else:
            scores = att_scores if several else att_scores.unsqueeze(1)  # (B, C, T)
        if self.gru == "AIGRU":  # the scores scale the inputs; the recurrence is a plain GRU
            inputs = inputs.unsqueeze(1) * scores.unsqueeze(-1)  # (B, C, T, I)
            gate = real.unsqueeze(1).expand_as(scores)
        else:
            inputs = inputs.unsqueeze(1)  # (B, 1, T, I): shared by the C score sequences
            gate = scores * real.unsqueeze(1) if att_scores is not None else scores
        outputs = self._loop(inputs, gate) * real[:, None, :, None]  # (B, C, T, H)
        n_seq = gate.shape[1]
        last = last_state(outputs.flatten(0, 1), lengths.repeat_interleave(n_seq), padding_side)
        last = last.view(*outputs.shape[:2], -1)  # (B, C, H)
        return (outputs, last) if several else (outputs[:, 0], last[:, 0])

    def _loop(self, inputs: Tensor, gate: Tensor) -> Tensor:
        """States (B, C, T, H) for inputs (B, 1 or C, T, I) and gate scores (B, C, T)."""
        batch, n_seq, width = gate.shape
        columns = (gate != 0).any(1).any(0).nonzero().flatten()  # steps that change a state
        if len(columns) == 0:
            return inputs.new_zeros(batch, n_seq, width, self.hidden_size)
        first, last = int(columns[0]), int(columns[-1])
        span = slice(first, last + 1)
        # unbind, not indexing per step: the backward of each step's slice would add a
        # full-size zero tensor; unbind's backward is one stack
        gates_in, candidate_in = self.rnn.project_input(inputs[:, :, span])  # (B, 1|C, T', .)
        steps = zip(gates_in.unbind(2), candidate_in.unbind(2),
                    gate[:, :, span].unsqueeze(-1).unbind(2), strict=True)  # fmt: skip
        weights = self.rnn.hidden_weights()
        state = inputs.new_zeros(batch, n_seq, self.hidden_size)
        outputs = []
        for gates_t, candidate_t, gate_t in steps:
            state = self.rnn.step((gates_t, candidate_t), state, gate_t, weights)  # (B, C, H)
            outputs.append(state)
        stacked = torch.stack(outputs, 2)  # (B, C, T', H)
        return F.pad(stacked, (0, 0, first, width - last - 1))


def last_state(outputs: Tensor, lengths: Tensor, padding_side: PaddingSide = "left") -> Tensor:
    """Each row's state after its last real step (B, H); 0 for a row without real steps.

    ``outputs`` (B, T, H) must be 0 at padding (as ``DynamicRNN`` returns them).
    """
    if padding_side == "left":
        return outputs[:, -1]  # (B, H): the newest column, 0 when the row is all padding
    index = (lengths - 1).clamp(min=0)  # (B,)
    picked = outputs[torch.arange(outputs.shape[0], device=outputs.device), index]
    return picked * (lengths > 0).unsqueeze(-1)
