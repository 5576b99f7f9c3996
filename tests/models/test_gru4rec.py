"""GRU4Rec: RecBole's forward, the three losses, the shared negative pool and its sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import Sequences
from seqrec.losses import bpr_max, sample_pool, sampling_weights, top1_max
from seqrec.models import build_model

N_ITEMS = 30


def model(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    config = dict(n_items=N_ITEMS, max_len=6, embedding_size=8, hidden_size=12, dropout_embed=0.0)
    return build_model("gru4rec", **(config | overrides))


def windows(seed: int = 0, rows: int = 16) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    seq = torch.randint(1, N_ITEMS + 1, (rows, 7), generator=gen)
    seq[::3, :3] = 0  # some left padding
    return seq


def test_forward_is_recbole_s_sequence_output_at_the_newest_item() -> None:
    m = model().eval()
    seq = windows()[:, 1:]
    lengths = (seq != 0).sum(1)
    torch.testing.assert_close(m(seq, lengths), m.encode(seq)[:, -1])
    right_padded = torch.tensor([[3, 4, 0, 0, 0, 0]])  # RecBole's layout
    with pytest.raises(ValueError, match="must be left-padded"):
        m(right_padded, torch.tensor([2]))
    with pytest.raises(ValueError, match="must count its items"):
        m(seq, lengths + 1)


@pytest.mark.parametrize("loss", ["ce", "bpr-max", "top1-max"])
def test_every_loss_learns_to_rank_the_next_items_of_a_batch(loss: str) -> None:
    m = model(loss=loss, n_sample=16)
    seq = windows()
    optimizer = torch.optim.Adam(m.parameters(), lr=2e-2)
    for step in range(60):
        value = m.calculate_loss(SequenceBatch(seq), torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    m.eval()
    scores = m.full_sort_predict(SequenceBatch(seq[:, :-1]))  # predicts the last column
    rank = 1 + (scores > scores.gather(1, seq[:, -1:])).sum(1)
    assert (rank <= 3).float().mean() > 0.8  # random ranks would put 10% there


def test_sampled_loss_is_the_formula_over_the_pool_the_generator_draws() -> None:
    m = model(loss="bpr-max", n_sample=40, elu_param=0.5, bpreg=0.3).eval()
    seq = windows(1)
    counts = torch.arange(N_ITEMS + 1, dtype=torch.float32)
    m.output.counts.copy_(counts)
    with torch.no_grad():
        m.output.bias.normal_()  # the item bias counts in the sampled scores too
    loss = m.calculate_loss(SequenceBatch(seq), torch.Generator().manual_seed(3))
    inputs, targets = seq[:, :-1], seq[:, 1:]
    positions = (inputs != 0) & (targets != 0)
    hidden = m.encode(inputs)[positions]  # (N, E)
    target = targets[positions]
    pool = sample_pool(sampling_weights(counts, 0.5), 40, torch.Generator().manual_seed(3))
    table, bias = m.output.items.weight, m.output.bias
    pos = F.elu((hidden * table[target]).sum(-1) + bias[target], 0.5)
    neg = F.elu(hidden @ table[pool].T + bias[pool], 0.5)
    valid = pool[None, :] != target[:, None]
    assert (~valid).any()  # some target was drawn into the pool and is no negative of itself
    torch.testing.assert_close(loss, bpr_max(pos, neg, 0.3, valid))
    top1 = model(loss="top1-max", n_sample=40, elu_param=0.5).eval()
    top1.load_state_dict(m.state_dict())
    value = top1.calculate_loss(SequenceBatch(seq), torch.Generator().manual_seed(3))
    torch.testing.assert_close(value, top1_max(pos, neg, valid))


def test_the_pool_follows_training_counts_after_prepare_from_training() -> None:
    m = model(loss="bpr-max", sample_alpha=1.0)
    assert torch.equal(m.output.counts[1:], torch.ones(N_ITEMS))  # uniform until prepared
    items = np.concatenate([np.full(k, k) for k in range(1, N_ITEMS + 1)])  # item k seen k times
    m.prepare_from_training(Sequences(np.array([0, len(items)]), items))
    assert m.output.counts.tolist() == list(range(N_ITEMS + 1))
    weights = sampling_weights(m.output.counts, m.config.sample_alpha)
    draws = sample_pool(weights, 200_000, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=N_ITEMS + 1).double() / len(draws)
    expected = torch.arange(N_ITEMS + 1, dtype=torch.float64) / sum(range(N_ITEMS + 1))
    torch.testing.assert_close(freq, expected, atol=3e-3, rtol=0)


def test_sampled_losses_take_their_randomness_from_the_generator_only() -> None:
    m = model(loss="top1-max", n_sample=8)
    batch = SequenceBatch(windows())
    torch.manual_seed(11)
    first = m.calculate_loss(batch, torch.Generator().manual_seed(5))
    torch.manual_seed(12)  # the global RNG does not matter without dropout
    assert torch.equal(first, m.calculate_loss(batch, torch.Generator().manual_seed(5)))
    assert not torch.equal(first, m.calculate_loss(batch, torch.Generator().manual_seed(6)))


def test_constrained_embedding_ties_the_input_and_output_tables() -> None:
    tied, separate = model(), model(constrained_embedding=False)
    assert tied.item_embedding is tied.output.items
    assert separate.item_embedding is not separate.output.items
    n_table = (N_ITEMS + 1) * 8
    n_tied = sum(p.numel() for p in tied.parameters())
    assert sum(p.numel() for p in separate.parameters()) == n_tied + n_table
    seq = windows()[:, 1:]
    with torch.no_grad():
        separate.item_embedding.weight.add_(1.0)  # inputs change, the output table does not
    assert not torch.allclose(separate.eval()(seq), model(constrained_embedding=False).eval()(seq))


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"GRU4RecConfig.loss: invalid value 'bpr'"):
        model(loss="bpr")
    with pytest.raises(ValueError, match=r"GRU4RecConfig.sample_alpha"):
        model(sample_alpha=-0.5)


@pytest.mark.parametrize("loss", ["ce", "bpr-max"])
def test_the_loss_does_not_depend_on_left_padding_columns(loss: str) -> None:
    m = model(loss=loss, n_sample=8, max_len=10)
    seq = windows(2)
    seq[:, :2] = 0  # every row starts with padding: the GRU runs only over the other columns
    wider = torch.cat([torch.zeros(len(seq), 4, dtype=torch.long), seq], dim=1)
    narrow = m.calculate_loss(SequenceBatch(seq), torch.Generator().manual_seed(0))
    wide = m.calculate_loss(SequenceBatch(wider), torch.Generator().manual_seed(0))
    torch.testing.assert_close(wide, narrow, rtol=1e-6, atol=1e-6)
    one_item = torch.tensor([[0, 0, 0, 5], [0, 0, 0, 0]])  # no target at all
    with pytest.raises(ValueError, match="the batch has no target"):
        model(loss=loss).calculate_loss(SequenceBatch(one_item))
