"""Replacement token detection: what is replaced, the discriminator labels, and its loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqrec.nn import TransformerEncoder
from seqrec.objectives import ReplacementLanguageModeling

N_ITEMS = 12


class OneItemScorer:
    """A generator that is sure the answer is always item ``item``."""

    def __init__(self, item: int) -> None:
        self.item = item

    def score_items(self, hidden: torch.Tensor) -> torch.Tensor:
        scores = torch.full((hidden.shape[0], N_ITEMS + 1), -1e9)
        scores[:, self.item] = 0.0
        return scores

    def target_loss(self, hidden, targets, generator) -> torch.Tensor:
        return hidden.sum() * 0.0


def seq() -> torch.Tensor:
    return torch.tensor([[1, 2, 3, 4, 5, 6], [0, 0, 7, 8, 9, 10], [0, 0, 0, 0, 11, 12]])


def test_only_masked_positions_are_replaced_by_the_generator_sample() -> None:
    objective = ReplacementLanguageModeling(N_ITEMS, 8, mlm_probability=0.5)
    info = objective.compute_masked_targets(seq(), True, torch.Generator().manual_seed(0))
    hidden = torch.zeros(int(info.schema.sum()), 8)
    corrupted = objective.get_fake_tokens(seq(), info, hidden, OneItemScorer(3), None)
    assert (corrupted[info.schema] == 3).all()
    assert torch.equal(corrupted[~info.schema], seq()[~info.schema])
    labels = objective.discriminator_labels(seq(), corrupted)
    # a sample equal to the original item is not a replacement
    assert torch.equal(labels, info.schema & (seq() != 3))


def test_sample_from_batch_draws_items_present_in_the_batch() -> None:
    objective = ReplacementLanguageModeling(N_ITEMS, 8, sample_from_batch=True)
    batch = torch.tensor([[0, 0, 5, 5], [0, 9, 9, 9]])
    generator = torch.Generator().manual_seed(1)
    drawn = set()
    for _ in range(50):
        info = objective.compute_masked_targets(batch, True, generator)
        hidden = torch.zeros(int(info.schema.sum()), 8)
        corrupted = objective.get_fake_tokens(batch, info, hidden, OneItemScorer(3), generator)
        drawn |= set(corrupted[info.schema].tolist())
    assert drawn == {5, 9}


def test_training_loss_adds_the_weighted_discriminator_loss() -> None:
    torch.manual_seed(0)
    objective = ReplacementLanguageModeling(
        N_ITEMS, 8, mlm_probability=0.5, discriminator_weight=2.0
    )
    encoder = TransformerEncoder(N_ITEMS + 2, max_len=6, hidden_size=8, inner_size=16).eval()
    loss = objective.training_loss(
        encoder, OneItemScorer(3), seq(), torch.Generator().manual_seed(2)
    )
    info = objective.compute_masked_targets(seq(), True, torch.Generator().manual_seed(2))
    corrupted = seq().masked_fill(info.schema, 3)
    states = objective.encode(encoder, corrupted)
    real = corrupted != 0
    logits = objective.discriminator(states[real]).squeeze(-1)
    labels = (corrupted != seq())[real].float()
    expected = 2.0 * F.binary_cross_entropy_with_logits(logits, labels)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert objective.discriminator.weight.grad.abs().sum() > 0
