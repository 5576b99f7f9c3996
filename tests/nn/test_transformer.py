"""Transformer encoder: mask polarity, padding, positions, pruned last block and dropout."""

from __future__ import annotations

import pytest
import torch

from seqrec.nn import TransformerEncoder, attention_mask
from seqrec.nn.transformer import _query_mask, dropout

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


# --- two-stream attention (XLNet) ---------------------------------------------------------------


def attend_by_hand(block, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor):
    """Multi-head softmax attention written out; rows of ``allowed`` with no key give zeros."""

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.view(*x.shape[:2], block.n_heads, -1).transpose(1, 2)  # (B, H, L, Dh)

    scores = split(q) @ split(k).transpose(-1, -2) / split(q).shape[-1] ** 0.5  # (B, H, T, L)
    scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return (weights @ split(v)).transpose(1, 2).flatten(2)  # (B, T, D)


def two_stream_by_hand(model, seq: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Both streams at every column (B, L, D), straight from XLNet's definition."""
    width = seq.shape[1]
    eye = torch.eye(width, dtype=torch.bool)
    keys = (seq != 0)[:, None, :]
    content = (allowed | eye) & (keys | eye)  # padding never seen; each position sees itself
    query = content & ~eye  # the query stream never sees its own column
    positions = model.position_embedding.weight[model.max_len - width :]
    h = model.norm(model.embed(seq) + positions)
    g = model.norm(query_input(model) + positions).expand_as(h)
    for block in model.blocks:
        hidden = h.shape[-1]
        q_h, k, v = block.qkv(h).chunk(3, dim=-1)
        q_g = g @ block.qkv.weight[:hidden].T + block.qkv.bias[:hidden]
        h, g = (
            block._finish(h, attend_by_hand(block, q_h, k, v, content)),
            block._finish(g, attend_by_hand(block, q_g, k, v, query)),
        )
    return g


def query_input(model) -> torch.Tensor:
    return torch.linspace(-1, 1, model.position_embedding.weight.shape[1])


def two_stream(model, seq, allowed, positions) -> torch.Tensor:
    return model.two_stream(model.embed(seq), seq == 0, allowed, positions, query_input(model))


def two_stream_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows with padding, one row of a single item that is a target, random permissions."""
    seq = torch.tensor(
        [[3, 4, 5, 6, 7, 8], [0, 0, 9, 10, 11, 12], [0, 0, 0, 0, 0, 13], [0, 0, 0, 0, 0, 0]]
    )
    allowed = torch.rand(4, WIDTH, WIDTH, generator=torch.Generator().manual_seed(1)) < 0.5
    positions = torch.zeros_like(seq, dtype=torch.bool)
    positions[0, [0, 2, 5]] = True
    positions[1, [2, 4]] = True
    positions[2, 5] = True
    return seq, allowed, positions


def test_two_stream_equals_xlnets_definition_at_the_query_positions() -> None:
    model = encoder()
    seq, allowed, positions = two_stream_case()
    expected = two_stream_by_hand(model, seq, allowed)[positions]  # (N, D)
    got = two_stream(model, seq, allowed, positions)
    assert got.shape == (6, 16) and torch.isfinite(got).all()
    torch.testing.assert_close(got, expected)


def test_the_query_stream_never_reads_its_own_content() -> None:
    torch.manual_seed(0)
    model = TransformerEncoder(20, max_len=8, hidden_size=16, n_layers=1, inner_size=32).eval()
    seq = ids(padded=False)
    everything = torch.ones(len(seq), WIDTH, WIDTH, dtype=torch.bool)
    positions = torch.zeros_like(seq, dtype=torch.bool)
    positions[:, 3] = True
    states = two_stream(model, seq, everything, positions)
    own, other = seq.clone(), seq.clone()
    own[:, 3] = 1
    other[:, 2] = 1
    torch.testing.assert_close(two_stream(model, own, everything, positions), states)
    assert not torch.allclose(two_stream(model, other, everything, positions), states)


def test_a_query_with_nothing_to_read_predicts_from_its_position_alone() -> None:
    model = encoder()
    seq = torch.tensor([[0, 0, 0, 5], [0, 0, 0, 17]])
    positions = seq != 0
    allowed = torch.ones(2, 4, 4, dtype=torch.bool)
    states = two_stream(model, seq, allowed, positions)
    assert torch.isfinite(states).all()
    torch.testing.assert_close(states[0], states[1])  # the item does not matter


def test_the_content_stream_of_a_two_stream_block_is_the_one_stream_block() -> None:
    model = encoder()
    block = model.blocks[0]
    seq, allowed, _ = two_stream_case()
    mask, _ = attention_mask(seq == 0, allowed)
    h = torch.randn(4, WIDTH, 16, generator=torch.Generator().manual_seed(2))
    g = torch.randn(4, 3, 16, generator=torch.Generator().manual_seed(3))
    query_mask = torch.ones(4, 1, 3, WIDTH, dtype=torch.bool)
    has_key = torch.ones(4, 1, 3, dtype=torch.bool)
    h_out, g_out = block.two_stream(h, g, mask, query_mask, has_key)
    torch.testing.assert_close(h_out, block(h, mask, False))
    torch.testing.assert_close(g_out, block.query_stream(h, g, query_mask, has_key))


def test_query_rows_never_see_their_own_column_and_never_have_no_key() -> None:
    seq, allowed, _ = two_stream_case()
    content, _ = attention_mask(seq == 0, allowed)  # (B, 1, L, L)
    columns = torch.tensor([[0, 2, 5], [2, 4, 0], [5, 0, 0], [0, 0, 0]])
    mask, has_key = _query_mask(content, columns)  # (B, 1, T, L), (B, 1, T)
    assert mask.any(dim=-1).all()  # a row without a visible key would make softmax NaN
    own = mask.gather(3, columns[:, None, :, None]).squeeze(-1)  # (B, 1, T)
    assert not (own & has_key).any()
    assert not has_key[2, 0, 0]  # the one-item row: nothing to read
    expected = content.gather(2, columns[:, None, :, None].expand(-1, 1, -1, WIDTH))
    expected = expected & (torch.arange(WIDTH) != columns[:, None, :, None])
    assert torch.equal(mask[has_key], expected[has_key])
