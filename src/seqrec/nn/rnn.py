"""Attention-gated GRUs of DIEN (Zhou et al., AAAI 2019) and a runner for padded sequences.

- ``AGRUCell``: the attention score replaces the update gate, ``h' = (1 - a) h + a h~``.
- ``AUGRUCell``: the attention score scales the update gate, ``u~ = a u``,
  ``h' = (1 - u~) o h + u~ o h~``.
- ``DynamicRNN``: GRU, AIGRU (GRU over attention-scaled inputs), AGRU or AUGRU over a batch of
  left- or right-padded sequences; each sequence starts from a zero state at its first real
  step and its state stops changing after its last, as a loop over that sequence alone would.

Both cells use PyTorch's ``nn.GRUCell`` conventions: ``r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)``,
``u = sigmoid(W_iu x + b_iu + W_hu h + b_hu)``, ``h~ = tanh(W_ih x + b_ih + r o (W_hh h + b_hh))``,
with ``u`` the weight of the candidate ``h~`` (the paper's notation). Weights are stacked
``(W_r | W_u | W_h)`` as in RecBole; the AGRU has no update gate, so it stores only
``(W_r | W_h)``. Differences, on purpose:

- RecBole initialises the cell weights from ``randn`` (standard normal); these cells draw them
  uniformly from ``+-1/sqrt(hidden_size)``, as ``nn.GRU`` does.
- The DIEN authors' code (``VecAttGRUCell``) computes ``u' = (1 - a) u`` on TensorFlow's gate
  (which weighs the old state), so a score of 0 there gives a plain GRU step; here, as in the
  paper and RecBole, a score of 0 keeps the old state.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

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

    def project_input(self, input: Tensor) -> Tensor:
        """``W_i x + b_i`` for any leading shape: (..., n_gates * H). Done once per sequence."""
        return F.linear(input, self.weight_ih, self.bias_ih)

    def forward(self, input: Tensor, hidden_output: Tensor, att_score: Tensor) -> Tensor:
        """Next state (N, H) from input (N, I), state (N, H) and attention score (N,) or (N, 1)."""
        return self.step(self.project_input(input), hidden_output, att_score)

    def step(self, gi: Tensor, hidden_output: Tensor, att_score: Tensor) -> Tensor:
        """Next state from the projected input ``gi`` (..., n_gates * H), broadcastable against
        the state (..., H), and one score per state (...,) or (..., 1)."""
        raise NotImplementedError


class AGRUCell(_AttentionGRUCell):
    """Attention-based GRU: ``h' = (1 - a) * h + a * h~``; the update gate is not computed."""

    n_gates = 2

    def step(self, gi: Tensor, hidden_output: Tensor, att_score: Tensor) -> Tensor:
        gh = F.linear(hidden_output, self.weight_hh, self.bias_hh)  # (N, 2H)
        i_r, i_h = gi.chunk(2, -1)
        h_r, h_h = gh.chunk(2, -1)
        reset = torch.sigmoid(i_r + h_r)
        candidate = torch.tanh(i_h + reset * h_h)
        a = att_score.reshape(*hidden_output.shape[:-1], 1)
        return hidden_output + a * (candidate - hidden_output)


class AUGRUCell(_AttentionGRUCell):
    """GRU with attentional update gate: ``u~ = a * u``; ``h' = (1 - u~) o h + u~ o h~``."""

    n_gates = 3

    def step(self, gi: Tensor, hidden_output: Tensor, att_score: Tensor) -> Tensor:
        gh = F.linear(hidden_output, self.weight_hh, self.bias_hh)  # (N, 3H)
        i_r, i_u, i_h = gi.chunk(3, -1)
        h_r, h_u, h_h = gh.chunk(3, -1)
        reset = torch.sigmoid(i_r + h_r)
        update = att_score.reshape(*hidden_output.shape[:-1], 1) * torch.sigmoid(i_u + h_u)
        candidate = torch.tanh(i_h + reset * h_h)
        return hidden_output + update * (candidate - hidden_output)


def real_mask(lengths: Tensor, width: int, padding_side: PaddingSide = "left") -> Tensor:
    """True at the ``lengths`` real positions of each row of a padded (B, width) batch."""
    columns = torch.arange(width, device=lengths.device)
    if padding_side == "left":
        return columns >= width - lengths[:, None]  # (B, width)
    if padding_side == "right":
        return columns < lengths[:, None]
    raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")


def _roll_rows(x: Tensor, shift: Tensor) -> Tensor:
    """Row ``b`` of (B, T, ...) rotated left by ``shift[b]`` columns (a gather, no loop)."""
    width = x.shape[1]
    index = (torch.arange(width, device=x.device) + shift[:, None]) % width  # (B, T)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class DynamicRNN(nn.Module):
    """One of GRU, AIGRU, AGRU, AUGRU over padded variable-length sequences.

    ``forward(inputs (B, T, I), lengths (B,), att_scores, padding_side)`` returns
    ``(outputs, last)``: the state after every real step (0 at padding) and each sequence's
    final state (0 for an empty one). ``att_scores`` is (B, T), or (B, C, T) for ``C`` score
    sequences over the same inputs (one per candidate item); then ``outputs`` is (B, C, T, H)
    and ``last`` (B, C, H), and the input projection is computed once for all ``C``.

    GRU and AIGRU run ``nn.GRU`` on packed sequences (left padding is rotated to the right
    first). AGRU and AUGRU loop over time steps with every row at once, over the columns where
    some row is real; a row's state only changes at its own real steps.
    """

    def __init__(
        self, input_size: int, hidden_size: int, gru: str = "AUGRU", bias: bool = True
    ) -> None:
        super().__init__()
        if gru not in GRU_TYPES:
            raise ValueError(f"gru must be one of {', '.join(GRU_TYPES)}, got {gru!r}")
        self.gru, self.input_size, self.hidden_size = gru, input_size, hidden_size
        if gru in ("GRU", "AIGRU"):
            self.rnn: nn.Module = nn.GRU(input_size, hidden_size, bias=bias, batch_first=True)
        else:
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
        mask = real_mask(lengths, inputs.shape[1], padding_side)  # (B, T)
        if self.gru == "GRU":
            outputs = self._packed_gru(inputs, lengths, padding_side) * mask.unsqueeze(-1)
            return outputs, last_state(outputs, lengths, padding_side)
        several = att_scores.dim() == 3
        scores = att_scores if several else att_scores.unsqueeze(1)  # (B, C, T)
        if self.gru == "AIGRU":
            outputs = self._aigru(inputs, lengths, scores, padding_side)
        else:
            outputs = self._attention_loop(inputs, mask, scores)
        outputs = outputs * mask[:, None, :, None]  # (B, C, T, H)
        n_seq = scores.shape[1]
        last = last_state(outputs.flatten(0, 1), lengths.repeat_interleave(n_seq), padding_side)
        last = last.view(*outputs.shape[:2], -1)  # (B, C, H)
        return (outputs, last) if several else (outputs[:, 0], last[:, 0])

    def _aigru(
        self, inputs: Tensor, lengths: Tensor, scores: Tensor, padding_side: PaddingSide
    ) -> Tensor:
        """GRU states (B, C, T, H) over the inputs scaled by each of the C score sequences."""
        batch, n_seq, width = scores.shape
        scaled = (inputs.unsqueeze(1) * scores.unsqueeze(-1)).flatten(0, 1)  # (B*C, T, I)
        outputs = self._packed_gru(scaled, lengths.repeat_interleave(n_seq), padding_side)
        return outputs.view(batch, n_seq, width, -1)

    def _packed_gru(self, inputs: Tensor, lengths: Tensor, padding_side: PaddingSide) -> Tensor:
        width = inputs.shape[1]
        shift = (width - lengths) if padding_side == "left" else torch.zeros_like(lengths)
        right = _roll_rows(inputs, shift)  # (N, T, I), real steps first
        packed = pack_padded_sequence(
            right, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=width)  # (N, T, H)
        return _roll_rows(out, -shift)

    def _attention_loop(self, inputs: Tensor, mask: Tensor, scores: Tensor) -> Tensor:
        """States (B, C, T, H) of the AGRU/AUGRU for scores (B, C, T); padding not yet zeroed."""
        batch, n_seq, width = scores.shape
        cell = self.rnn
        columns = mask.any(0).nonzero().flatten()  # columns where some row has a real step
        if len(columns) == 0:
            return inputs.new_zeros(batch, n_seq, width, self.hidden_size)
        first, last = int(columns[0]), int(columns[-1])
        gi = cell.project_input(inputs[:, first : last + 1]).unsqueeze(1)  # (B, 1, T', G)
        state = inputs.new_zeros(batch, n_seq, self.hidden_size)
        outputs = []
        for t in range(last + 1 - first):
            column = first + t
            new = cell.step(gi[:, :, t], state, scores[:, :, column])  # (B, C, H)
            state = torch.where(mask[:, column, None, None], new, state)
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
