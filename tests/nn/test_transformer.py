"""Transformer encoder: mask polarity, padding, positions, pruned last block and dropout."""

from __future__ import annotations

import pytest
import torch

from seqrec.nn import TransformerEncoder, attention_mask
from seqrec.nn.transformer import dropout

WIDTH = 6


def encoder() -> TransformerEncoder:
    torch.manual_seed(0)
    return TransformerEncoder(20, max_len=8, hidden_size=16, n_heads=2, inner_size=32).eval()


def ids(padded: bool = True) -> torch.Tensor:
    seq = torch.tensor([[3, 4, 5, 6, 7, 8], [0, 0, 9, 10, 11, 12], [0, 0, 0, 0, 0, 0]])
    return seq if padded else seq[:2].clamp(min=1)


def run(model: TransformerEncoder, seq: torch.Tensor, attention, positions=None) -> torch.Tensor:
    return model(model.embed(seq), seq == 0, attention, positions)


def test_the_mask_allows_real_keys_and_each_position_itself() -> None:
    padding = ids() == 0
    mask, is_causal = attention_mask(padding, "causal")
    assert mask.shape == (3, 1, WIDTH, WIDTH) and not is_causal
    assert mask[1, 0, 3].tolist() == [False, False, True, True, False, False]
    assert mask[1, 0, 0].tolist() == [True, False, False, False, False, False]
    assert attention_mask(ids(padded=False) == 0, "causal") == (None, True)
    assert attention_mask(ids(padded=False) == 0, "bidirectional") == (None, False)


@pytest.mark.parametrize("padded", [True, False])
def test_explicit_masks_match_the_named_kinds(padded: bool) -> None:
    model, seq = encoder(), ids(padded)
    everything = torch.ones(len(seq), WIDTH, WIDTH, dtype=torch.bool)
    lower = everything.tril()
    real = seq != 0  # what padding queries see may differ: their states are never read
    bidirectional = run(model, seq, "bidirectional")[real]
    torch.testing.assert_close(run(model, seq, everything)[real], bidirectional)
    torch.testing.assert_close(run(model, seq, lower)[real], run(model, seq, "causal")[real])
    for attention in ("causal", "bidirectional", lower):
        assert torch.isfinite(run(model, seq, attention)).all()


def test_later_items_do_not_change_earlier_causal_states() -> None:
    model, seq = encoder(), ids()
    changed = seq.clone()
    changed[:, 4] = 1
    torch.testing.assert_close(
        run(model, changed, "causal")[:, :4], run(model, seq, "causal")[:, :4]
    )


def test_the_same_history_gets_the_same_states_whatever_the_padding() -> None:
    model, seq = encoder(), ids()[1:2, 2:]  # four items, no padding
    wider = torch.cat([torch.zeros(1, 4, dtype=torch.long), seq], dim=1)
    for attention in ("causal", "bidirectional"):
        narrow = run(model, seq, attention)
        torch.testing.assert_close(run(model, wider, attention)[:, 4:], narrow, atol=1e-5, rtol=0)


@pytest.mark.parametrize("attention", ["causal", "bidirectional", "explicit"])
@pytest.mark.parametrize("padded", [True, False])
def test_the_pruned_last_block_equals_the_full_states_gathered(attention, padded) -> None:
    model, seq = encoder(), ids(padded)
    if attention == "explicit":
        attention = (
            torch.rand(len(seq), WIDTH, WIDTH, generator=torch.Generator().manual_seed(0)) < 0.5
        )
    positions = torch.zeros_like(seq, dtype=torch.bool)
    positions[0, [1, 4]] = True
    positions[1, 5] = True
    full = run(model, seq, attention)[positions]
    torch.testing.assert_close(run(model, seq, attention, positions), full)
    everything = seq != 0  # more than half: the whole block runs, same result
    torch.testing.assert_close(
        run(model, seq, attention, everything), run(model, seq, attention)[everything]
    )


def test_too_wide_input_is_an_error() -> None:
    with pytest.raises(ValueError, match="exceeds the encoder's max_len 8"):
        run(encoder(), torch.ones(1, 9, dtype=torch.long), "causal")


def test_dropout_zeroes_p_of_the_values_and_keeps_the_mean() -> None:
    torch.manual_seed(0)
    x = torch.ones(200_000)
    out = dropout(x, 0.2, training=True)
    assert abs((out == 0).float().mean().item() - 0.2) < 0.005
    assert torch.allclose(out[out != 0], torch.tensor(1.25))
    assert abs(out.mean().item() - 1.0) < 0.01
    assert dropout(x, 0.2, training=False) is x and dropout(x, 0.0, training=True) is x
