"""DIN attention, DIEN's interest extractor (auxiliary loss) and interest evolving layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqrec.nn.interest import InterestEvolvingLayer, InterestExtractorNetwork, SequenceAttLayer
from seqrec.nn.rnn import real_mask

D = 6


def concatenated_scores(att: SequenceAttLayer, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """DIN's activation unit written plainly: the MLP over [q, k, q - k, q * k]: (B, C, T)."""
    q = q[:, :, None, :].expand(-1, -1, k.shape[1], -1)  # (B, C, T, D)
    k = k[:, None, :, :].expand_as(q)
    hidden = att.first_activation(att.first(torch.cat([q, k, q - k, q * k], -1)))
    return att.rest(hidden).squeeze(-1)


def batch(seed: int = 0, lengths=(5, 3, 1, 0)):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    return (
        torch.randn(len(lengths), 3, D, generator=gen),  # queries: 3 candidates per row
        torch.randn(len(lengths), 5, D, generator=gen),  # keys
        lengths,
    )


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "prelu"])
def test_attention_scores_are_the_mlp_of_the_concatenation(activation: str) -> None:
    torch.manual_seed(0)
    att = SequenceAttLayer(D, (8, 4), activation, softmax_stag=False)
    q, k, lengths = batch()
    mask = real_mask(lengths, 5)
    expected = concatenated_scores(att, q, k).masked_fill(~mask[:, None, :], 0.0)
    torch.testing.assert_close(att(q, k, mask), expected)


def test_softmax_weights_over_real_positions_sum_to_one_and_padding_gets_zero() -> None:
    torch.manual_seed(1)
    att = SequenceAttLayer(D, (8, 4), softmax_stag=True)
    q, k, lengths = batch(1)
    mask = real_mask(lengths, 5)
    weights = att(q, k, mask)  # (B, C, T)
    assert torch.equal(weights[~mask[:, None, :].expand_as(weights)], torch.zeros(3 * 11))
    torch.testing.assert_close(weights[:3].sum(-1), torch.ones(3, 3))
    assert torch.equal(weights[3], torch.zeros(3, 5))  # no history: zeros, not NaN
    raw = concatenated_scores(att, q, k)[0]  # row 0 is all real: a plain softmax
    torch.testing.assert_close(weights[0], torch.softmax(raw, -1))


def test_an_all_padding_row_gives_finite_gradients() -> None:
    torch.manual_seed(2)
    att = SequenceAttLayer(D, (8,), softmax_stag=True)
    q, k, _ = batch(2)
    q.requires_grad_(True)
    mask = real_mask(torch.tensor([0, 2, 0, 5]), 5)
    (att(q, k, mask) @ k).sum().backward()
    assert torch.isfinite(q.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in att.parameters())


@pytest.mark.parametrize("softmax_stag", [True, False])
def test_padded_keys_change_neither_weights_nor_pooled_interest(softmax_stag: bool) -> None:
    torch.manual_seed(3)
    att = SequenceAttLayer(D, (8, 4), softmax_stag=softmax_stag)
    q, k, lengths = batch(3)
    mask = real_mask(lengths, 5)
    noisy = k.masked_fill(~mask[..., None], 5.0)
    assert torch.equal(att(q, k, mask), att(q, noisy, mask))
    torch.testing.assert_close(
        att(q, k, mask) @ k, att(q, noisy, mask) @ noisy.masked_fill(~mask[..., None], 0.0)
    )


def test_a_2d_query_gives_2d_weights() -> None:
    att = SequenceAttLayer(D, (8,))
    q, k, lengths = batch(4)
    mask = real_mask(lengths, 5)
    torch.testing.assert_close(att(q[:, 0], k, mask), att(q, k, mask)[:, 0])


def aux_by_hand(net, h, click, noclick, lengths) -> torch.Tensor:
    """Per real position: BCE of h_t against the click (label 1) and the non-click (label 0)."""
    terms = []
    width = h.shape[1]
    for b, n in enumerate(lengths.tolist()):
        for t in range(width - n, width):
            pos = net(torch.cat([h[b, t], click[b, t]]))
            neg = net(torch.cat([h[b, t], noclick[b, t]]))
            terms.append(
                F.binary_cross_entropy_with_logits(pos, torch.ones(1))
                + F.binary_cross_entropy_with_logits(neg, torch.zeros(1))
            )
    return torch.stack(terms).mean()


def test_auxiliary_loss_is_the_bce_over_real_positions_only() -> None:
    torch.manual_seed(5)
    extractor = InterestExtractorNetwork(D, 4, (7,))
    gen = torch.Generator().manual_seed(5)
    h, click, noclick = torch.randn(3, 4, 4, generator=gen), *torch.randn(2, 3, 4, D, generator=gen)
    lengths = torch.tensor([4, 2, 0])
    loss = extractor.auxiliary_loss(h, click, noclick, lengths)
    torch.testing.assert_close(
        loss, aux_by_hand(extractor.auxiliary_net, h, click, noclick, lengths)
    )
    padding = ~real_mask(lengths, 4)[..., None]
    changed = [x.masked_fill(padding, 3.0) for x in (h, click, noclick)]
    assert torch.equal(extractor.auxiliary_loss(*changed, lengths), loss)
    assert extractor.auxiliary_loss(h, click, noclick, torch.zeros(3, dtype=torch.long)) == 0


def test_extractor_pairs_each_state_with_the_next_click() -> None:
    torch.manual_seed(6)
    extractor = InterestExtractorNetwork(D, D, (7,))
    gen = torch.Generator().manual_seed(6)
    keys, neg = torch.randn(2, 5, D, generator=gen), torch.randn(2, 5, D, generator=gen)
    lengths = torch.tensor([5, 3])
    states, aux = extractor(keys, lengths, neg)
    expected = aux_by_hand(extractor.auxiliary_net, states[:, :-1], keys[:, 1:], neg[:, 1:],
                           lengths - 1)  # fmt: skip
    torch.testing.assert_close(aux, expected)
    assert extractor(keys, lengths)[1] is None


@pytest.mark.parametrize("gru", ["GRU", "AIGRU", "AGRU", "AUGRU"])
def test_evolving_layer_ignores_padding_and_follows_the_target(gru: str) -> None:
    torch.manual_seed(7)
    layer = InterestEvolvingLayer(D, (8, 4), gru=gru)
    q, k, lengths = batch(7, lengths=(5, 3, 1))
    out = layer(q, k, lengths)
    assert out.shape == (3, 3, D)
    noisy = k.masked_fill(~real_mask(lengths, 5)[..., None], -4.0)
    torch.testing.assert_close(layer(q, noisy, lengths), out)
    # the interest evolved towards one target differs from that towards another
    assert not torch.allclose(out[:, 0], out[:, 1])


def test_augru_evolution_is_the_attention_driven_recurrence() -> None:
    torch.manual_seed(8)
    layer = InterestEvolvingLayer(D, (8,), gru="AUGRU")
    q, k, lengths = batch(8, lengths=(5, 2, 4))
    weights = layer.attention_layer(q, k, real_mask(lengths, 5))  # (B, C, T)
    for c in range(3):
        _, last = layer.dynamic_rnn(k, lengths, weights[:, c])
        torch.testing.assert_close(layer(q, k, lengths)[:, c], last)
