"""AGRU / AUGRU cells against their formulas, and DynamicRNN against a loop per sequence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqrec.nn.rnn import AGRUCell, AUGRUCell, DynamicRNN, real_mask

IN, H = 5, 4


def gates(cell: nn.Module, x: torch.Tensor, h: torch.Tensor) -> dict[str, torch.Tensor]:
    """The gate pre-activations written out from the stacked weights, one block at a time."""
    blocks = {"AGRUCell": ("r", "h"), "AUGRUCell": ("r", "u", "h")}[type(cell).__name__]
    w_i = dict(zip(blocks, cell.weight_ih.chunk(len(blocks)), strict=True))
    w_h = dict(zip(blocks, cell.weight_hh.chunk(len(blocks)), strict=True))
    b_i = dict(zip(blocks, cell.bias_ih.chunk(len(blocks)), strict=True))
    b_h = dict(zip(blocks, cell.bias_hh.chunk(len(blocks)), strict=True))
    r = torch.sigmoid(x @ w_i["r"].T + b_i["r"] + h @ w_h["r"].T + b_h["r"])
    out = {"r": r, "h~": torch.tanh(x @ w_i["h"].T + b_i["h"] + r * (h @ w_h["h"].T + b_h["h"]))}
    if "u" in blocks:
        out["u"] = torch.sigmoid(x @ w_i["u"].T + b_i["u"] + h @ w_h["u"].T + b_h["u"])
    return out


def random_inputs(seed: int, n: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, IN, generator=gen),
        torch.randn(n, H, generator=gen),
        torch.rand(n, generator=gen),
    )


@pytest.mark.parametrize("seed", range(3))
def test_agru_cell_replaces_the_update_gate_by_the_score(seed: int) -> None:
    torch.manual_seed(seed)
    cell = AGRUCell(IN, H)
    x, h, a = random_inputs(seed)
    g = gates(cell, x, h)
    expected = (1 - a[:, None]) * h + a[:, None] * g["h~"]
    torch.testing.assert_close(cell(x, h, a), expected)


@pytest.mark.parametrize("seed", range(3))
def test_augru_cell_scales_the_update_gate_by_the_score(seed: int) -> None:
    torch.manual_seed(seed)
    cell = AUGRUCell(IN, H)
    x, h, a = random_inputs(seed)
    g = gates(cell, x, h)
    u = a[:, None] * g["u"]
    torch.testing.assert_close(cell(x, h, a), (1 - u) * h + u * g["h~"])
    torch.testing.assert_close(cell(x, h, a[:, None]), (1 - u) * h + u * g["h~"])


def test_a_score_of_zero_keeps_the_state_and_augru_at_one_is_a_gru() -> None:
    torch.manual_seed(0)
    x, h, _ = random_inputs(0)
    for cell in (AGRUCell(IN, H), AUGRUCell(IN, H)):
        assert torch.equal(cell(x, h, torch.zeros(6)), h)
    augru = AUGRUCell(IN, H)
    gru = nn.GRUCell(IN, H)
    with torch.no_grad():  # PyTorch's update gate z weighs the old state: z = 1 - u
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            r, u, n = getattr(augru, name).chunk(3)
            theirs = getattr(gru, name)
            theirs.copy_(torch.cat([r, -u, n]))
    torch.testing.assert_close(augru(x, h, torch.ones(6)), gru(x, h))


def reference(rnn: DynamicRNN, inputs, lengths, scores, side: str):
    """Each sequence alone: its real steps only, from a zero state, with the cell or nn.GRU math
    (GRU = AUGRU with score 1; AIGRU = GRU over score-scaled inputs)."""
    width = inputs.shape[1]
    outputs = torch.zeros(inputs.shape[0], width, rnn.hidden_size)
    last = torch.zeros(inputs.shape[0], rnn.hidden_size)
    for b, n in enumerate(lengths.tolist()):
        columns = range(width - n, width) if side == "left" else range(n)
        state = torch.zeros(1, rnn.hidden_size)
        for t in columns:
            x, a = inputs[b, t][None], torch.ones(1) if scores is None else scores[b, t][None]
            if rnn.gru == "AIGRU":
                x, a = x * a, torch.ones(1)
            state = rnn.rnn(x, state, a)
            outputs[b, t] = state[0]
        last[b] = state[0]
    return outputs, last


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("gru", ["GRU", "AIGRU", "AGRU", "AUGRU"])
def test_dynamic_rnn_equals_a_loop_that_stops_at_each_length(gru: str, side: str) -> None:
    torch.manual_seed(1)
    rnn = DynamicRNN(IN, H, gru)
    lengths = torch.tensor([6, 3, 1, 0, 5])
    inputs = torch.randn(5, 6, IN)
    scores = None if gru == "GRU" else torch.rand(5, 6)
    outputs, last = rnn(inputs, lengths, scores, padding_side=side)
    expected_outputs, expected_last = reference(rnn, inputs, lengths, scores, side)
    torch.testing.assert_close(outputs, expected_outputs)
    torch.testing.assert_close(last, expected_last)
    assert torch.equal(last[3], torch.zeros(H))  # an empty sequence ends where it started


@pytest.mark.parametrize("gru", ["GRU", "AIGRU", "AGRU", "AUGRU"])
def test_padded_positions_change_nothing(gru: str) -> None:
    torch.manual_seed(2)
    rnn = DynamicRNN(IN, H, gru)
    lengths = torch.tensor([4, 2, 0])
    inputs, scores = torch.randn(3, 5, IN), torch.rand(3, 5)
    scores = None if gru == "GRU" else scores
    outputs, last = rnn(inputs, lengths, scores)
    padding = ~real_mask(lengths, 5)
    noisy = inputs.masked_fill(padding[..., None], 7.0)
    noisy_scores = None if scores is None else scores.masked_fill(padding, 0.9)
    outputs2, last2 = rnn(noisy, lengths, noisy_scores)
    assert torch.equal(outputs, outputs2) and torch.equal(last, last2)
    assert torch.equal(outputs[padding], torch.zeros(int(padding.sum()), H))


@pytest.mark.parametrize("gru", ["AIGRU", "AGRU", "AUGRU"])
def test_several_score_sequences_equal_one_run_each(gru: str) -> None:
    torch.manual_seed(3)
    rnn = DynamicRNN(IN, H, gru)
    lengths = torch.tensor([5, 2])
    inputs, scores = torch.randn(2, 5, IN), torch.rand(2, 3, 5)  # 3 candidates per row
    outputs, last = rnn(inputs, lengths, scores)
    assert outputs.shape == (2, 3, 5, H) and last.shape == (2, 3, H)
    for c in range(3):
        one_out, one_last = rnn(inputs, lengths, scores[:, c])
        torch.testing.assert_close(outputs[:, c], one_out)
        torch.testing.assert_close(last[:, c], one_last)


def test_the_scores_steer_the_attention_grus() -> None:
    torch.manual_seed(4)
    lengths, inputs = torch.tensor([5]), torch.randn(1, 5, IN)
    for gru in ("AIGRU", "AGRU", "AUGRU"):
        rnn = DynamicRNN(IN, H, gru)
        _, low = rnn(inputs, lengths, torch.full((1, 5), 0.1))
        _, high = rnn(inputs, lengths, torch.full((1, 5), 0.9))
        assert not torch.allclose(low, high)


def test_gru_type_and_scores_are_checked() -> None:
    with pytest.raises(ValueError, match="gru must be one of"):
        DynamicRNN(IN, H, "LSTM")
    with pytest.raises(ValueError, match="attention scores"):
        DynamicRNN(IN, H, "AUGRU")(torch.randn(1, 3, IN), torch.tensor([3]))
    with pytest.raises(ValueError, match="attention scores"):
        DynamicRNN(IN, H, "GRU")(torch.randn(1, 3, IN), torch.tensor([3]), torch.rand(1, 3))
