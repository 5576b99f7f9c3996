"""Sampled softmax with the log-Q correction: the formula, the proposals, and the models' use."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import Sequences
from seqrec.losses import proposal_log_q, sampled_softmax_ce
from seqrec.models import build_model
from seqrec.nn.sampled_softmax import SampledSoftmax


def by_hand(hidden, weight, bias, targets, negatives, log_q) -> torch.Tensor:
    losses = []
    for h, t in zip(hidden, targets, strict=True):
        pos = h @ weight[t] + bias[t] - log_q[t]
        negs = [h @ weight[j] + bias[j] - log_q[j] for j in negatives if j != t]
        logits = torch.stack([pos, *negs])
        losses.append(-F.log_softmax(logits, dim=0)[0])
    return torch.stack(losses).mean()


def test_sampled_softmax_is_its_formula_with_the_correction_and_without_accidental_hits():
    gen = torch.Generator().manual_seed(0)
    hidden, weight = torch.randn(6, 4, generator=gen), torch.randn(11, 4, generator=gen)
    bias = torch.randn(11, generator=gen)
    targets = torch.tensor([1, 3, 3, 7, 10, 2])
    negatives = torch.tensor([3, 5, 9, 2, 2, 8])  # 3 and 2 are also targets: accidental hits
    log_q = torch.log_softmax(torch.randn(11, generator=gen) * 2, dim=0)  # a skewed proposal
    expected = by_hand(hidden, weight, bias, targets, negatives, log_q)
    actual = sampled_softmax_ce(hidden, weight, bias, targets, negatives, log_q)
    torch.testing.assert_close(actual, expected)
    # without the correction the value differs: the proposal's bias would stay in the loss
    uncorrected = sampled_softmax_ce(hidden, weight, bias, targets, negatives, torch.zeros(11))
    assert not torch.allclose(uncorrected, actual)


def test_proposals_are_uniform_popularity_to_alpha_and_unigram():
    counts = torch.tensor([0.0, 1.0, 4.0, 16.0, 0.0])  # the last item never seen in training
    torch.testing.assert_close(proposal_log_q(counts, "uniform").exp()[1:], torch.full((4,), 1 / 4))
    torch.testing.assert_close(
        proposal_log_q(counts, "popular", 0.5).exp()[1:], torch.tensor([1.0, 2.0, 4.0, 1.0]) / 8
    )
    unigram = torch.tensor([1.0, 4.0, 16.0, 1.0]) / 22  # an unseen item counts once
    torch.testing.assert_close(proposal_log_q(counts, "in_batch").exp()[1:], unigram)
    assert proposal_log_q(counts, "popular")[0] == -torch.inf  # padding is never drawn


def test_the_loss_module_counts_training_items_and_draws_its_pool_from_the_generator():
    module = SampledSoftmax(n_items=5, n_negatives=4000, sampler="popular", alpha=1.0)
    module.prepare_from_training(Sequences(np.array([0, 4, 6]), np.array([1, 2, 2, 5, 5, 5])))
    assert module.counts.tolist() == [0.0, 1.0, 2.0, 0.0, 0.0, 3.0]
    pool = module.negatives(torch.tensor([1]), torch.Generator().manual_seed(1))
    share = torch.bincount(pool, minlength=6).float() / len(pool)
    expected = module.counts.clamp(min=1) / 8  # items 3 and 4 unseen: each counts once
    expected[0] = 0.0
    torch.testing.assert_close(share, expected, atol=0.03, rtol=0)
    in_batch = SampledSoftmax(5, 8, "in_batch")
    assert torch.equal(in_batch.negatives(torch.tensor([4, 2, 2]), None), torch.tensor([4, 2, 2]))


@pytest.mark.parametrize("name", ["bert4rec", "sasrec"])
@pytest.mark.parametrize("sampler", ["uniform", "popular", "in_batch"])
def test_models_train_with_the_sampled_softmax(name: str, sampler: str) -> None:
    torch.manual_seed(0)
    config = dict(n_items=30, max_len=6, hidden_size=16, n_layers=1, n_heads=2, inner_size=16,
                  hidden_dropout=0.0, attn_dropout=0.0, loss="sampled", n_negatives=12,
                  negative_sampler=sampler)  # fmt: skip
    model = build_model(name, **config)
    model.prepare_from_training(Sequences(np.array([0, 30]), np.arange(1, 31)))
    width = model.train_seq_len
    batch = SequenceBatch(
        torch.randint(1, 31, (8, width), generator=torch.Generator().manual_seed(3))
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(60):
        loss = model.calculate_loss(batch, torch.Generator().manual_seed(0))  # same masks, pool
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]
    assert model.sampled.counts[1:].eq(1).all()  # saved with the weights (a buffer)
    assert "sampled.counts" in dict(model.named_buffers())
