"""The left-padded GRU: padding leaves the state at zero, exactly."""

from __future__ import annotations

import math

import torch

from seqrec.nn.gru import LeftPaddedGRU


def test_padding_columns_change_nothing_whatever_they_hold() -> None:
    torch.manual_seed(0)
    gru = LeftPaddedGRU(5, 7, n_layers=2, dropout=0.0).eval()
    history = torch.randn(3, 4, 5)
    garbage = torch.randn(3, 6, 5) * 10  # padding columns holding anything
    padded = torch.cat([garbage, history], dim=1)
    padding = torch.zeros(3, 10, dtype=torch.bool)
    padding[:, :6] = True
    out = gru(padded, padding)
    assert torch.equal(out[:, :6], torch.zeros(3, 6, 7))  # the state stays exactly zero
    assert torch.equal(out[:, 6:], gru(history, torch.zeros(3, 4, dtype=torch.bool)))
    # the same GRU with biases would move away from zero on zero inputs
    assert all(not name.startswith("bias") for name, _ in gru.gru.named_parameters())


def test_rows_with_different_padding_match_their_unpadded_run() -> None:
    torch.manual_seed(1)
    gru = LeftPaddedGRU(4, 6, n_layers=1, dropout=0.0)
    x = torch.randn(2, 5, 4)
    padding = torch.tensor([[True, True, False, False, False], [False] * 5])
    out = gru(x, padding)
    alone = gru(x[:1, 2:], torch.zeros(1, 3, dtype=torch.bool))
    torch.testing.assert_close(out[:1, 2:], alone)  # a batch of 1 rounds differently


def test_gates_are_initialised_with_their_own_glorot_bound() -> None:
    torch.manual_seed(2)
    gru = LeftPaddedGRU(40, 10, n_layers=1, dropout=0.0)
    for gate in gru.gru.weight_ih_l0.view(3, 10, 40):
        bound = math.sqrt(6 / (40 + 10))
        assert gate.abs().max() <= bound and gate.abs().max() > 0.9 * bound
    for gate in gru.gru.weight_hh_l0.view(3, 10, 10):
        assert gate.abs().max() <= math.sqrt(6 / 20)
