"""Replacement token detection: generator sampling, corruption, discriminator labels and loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seqrec.nn import TransformerEncoder
from seqrec.objectives import ReplacementLanguageModeling

N_ITEMS = 12


class TableScorer:
    """A generator output layer: dot products with a fixed item table (row 0 = padding)."""

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table  # (n_items + 1, D)

    def score_items(self, hidden: torch.Tensor) -> torch.Tensor:
        scores = hidden @ self.table.T
        scores[:, 0] = float("-inf")
        return scores

    def score_candidates(self, hidden: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return hidden @ self.table[items].T

    def target_loss(self, hidden, targets, generator) -> torch.Tensor:
        return F.cross_entropy(hidden @ self.table[1:].T, targets - 1)


def seq() -> torch.Tensor:
    return torch.tensor([[1, 2, 3, 4, 5, 6], [0, 0, 7, 8, 9, 10], [0, 0, 0, 0, 11, 12]])


def chi_square_bound(df: int) -> float:
    """Wilson-Hilferty approximation of the chi-square 0.999 quantile."""
    z = 3.09
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.fixture
def model() -> tuple[TransformerEncoder, TableScorer]:
    torch.manual_seed(0)
    encoder = TransformerEncoder(N_ITEMS + 2, max_len=6, hidden_size=8, inner_size=16,
                                 hidden_dropout=0.0, attn_dropout=0.0)  # fmt: skip
    return encoder, TableScorer(encoder.item_embedding.weight[: N_ITEMS + 1])


def gumbel_argmax(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    noise = torch.rand(logits.shape, generator=generator)
    return (logits - torch.log(-torch.log(noise))).argmax(dim=1)


@pytest.mark.parametrize("from_batch", [False, True])
def test_the_loss_is_generator_ce_plus_weight_times_discriminator_bce(model, from_batch) -> None:
    """Computed by hand from the same seed: fails if either term or the sampling changes."""
    encoder, scorer = model
    objective = ReplacementLanguageModeling(N_ITEMS, 8, mlm_probability=0.5,
                                            sample_from_batch=from_batch,
                                            discriminator_weight=3.0)  # fmt: skip
    loss = objective.training_loss(encoder, scorer, seq(), torch.Generator().manual_seed(2))

    generator = torch.Generator().manual_seed(2)
    info = objective.compute_masked_targets(seq(), True, generator)
    inputs = objective.apply_mask_to_inputs(encoder.embed(info.input_ids), info.schema)
    hidden = encoder(inputs, seq() == 0, "bidirectional")[info.schema]  # (N, D)
    targets = seq()[info.schema]
    generator_ce = F.cross_entropy(hidden @ scorer.table[1:].T, targets - 1)
    with torch.no_grad():
        if from_batch:  # the softmax over the batch's masked labels, repeats included
            samples = targets[gumbel_argmax(hidden @ scorer.table[targets].T, generator)]
        else:  # over items 1..n_items
            catalogue = hidden @ scorer.table.T
            catalogue[:, 0] = float("-inf")
            samples = gumbel_argmax(catalogue, generator)
    corrupted = seq().clone()
    corrupted[info.schema] = samples
    states = encoder(encoder.embed(corrupted), corrupted == 0, "bidirectional")
    real = corrupted != 0
    replaced = (corrupted != seq())[real].float()
    bce = F.binary_cross_entropy_with_logits(
        objective.discriminator(states[real]).squeeze(-1), replaced
    )
    assert 0 < replaced.sum() < len(replaced)  # both labels occur: the check has teeth
    torch.testing.assert_close(loss, generator_ce + 3.0 * bce)
    loss.backward()
    assert objective.discriminator[0].weight.grad.abs().sum() > 0


def test_catalogue_samples_follow_the_generator_softmax() -> None:
    objective = ReplacementLanguageModeling(N_ITEMS, 4)
    table = torch.randn(N_ITEMS + 1, 4, generator=torch.Generator().manual_seed(3))
    scorer = TableScorer(table)
    hidden = torch.randn(1, 4, generator=torch.Generator().manual_seed(4)).expand(30_000, 4)
    targets = torch.full((30_000,), 5)
    items, columns = objective.sample_replacements(
        hidden, targets, scorer, torch.Generator().manual_seed(5)
    )
    assert columns is None and items.min() >= 1 and items.max() <= N_ITEMS
    counts = torch.bincount(items, minlength=N_ITEMS + 1)[1:].double()
    probs = torch.softmax(scorer.score_items(hidden[:1])[0, 1:].double(), dim=0)
    assert chi_square(counts, probs) < chi_square_bound(N_ITEMS - 1)
    uniform = torch.full((N_ITEMS,), 1 / N_ITEMS, dtype=torch.double)
    assert chi_square(counts, uniform) > 10 * chi_square_bound(N_ITEMS - 1)


def test_batch_samples_follow_the_softmax_over_the_batch_labels() -> None:
    """Item 7 is three of the six labels: its probability is the sum of its three columns."""
    objective = ReplacementLanguageModeling(N_ITEMS, 4, sample_from_batch=True)
    table = torch.randn(N_ITEMS + 1, 4, generator=torch.Generator().manual_seed(6))
    scorer = TableScorer(table)
    targets = torch.tensor([7, 2, 7, 9, 7, 4])
    hidden = torch.randn(1, 4, generator=torch.Generator().manual_seed(7)).expand(6, 4)
    generator = torch.Generator().manual_seed(8)
    drawn = []
    for _ in range(3000):
        items, columns = objective.sample_replacements(hidden, targets, scorer, generator)
        assert torch.equal(items, targets[columns])
        drawn.append(items)
    counts = torch.bincount(torch.cat(drawn), minlength=N_ITEMS + 1).double()
    column_probs = torch.softmax((hidden[0] @ table[targets].T).double(), dim=0)
    probs = torch.zeros(N_ITEMS + 1, dtype=torch.double).index_add_(0, targets, column_probs)
    present = probs > 0
    assert counts[~present].sum() == 0  # only items of the batch's labels
    assert chi_square(counts[present], probs[present]) < chi_square_bound(3)
    label_frequency = torch.bincount(targets, minlength=N_ITEMS + 1)[present].double() / 6
    assert chi_square(counts[present], label_frequency) > 10 * chi_square_bound(3)


def test_discriminator_labels_are_true_exactly_where_the_item_changed() -> None:
    objective = ReplacementLanguageModeling(N_ITEMS, 8, mlm_probability=0.5)
    original = seq()
    info = objective.compute_masked_targets(original, True, torch.Generator().manual_seed(0))
    n_masked = int(info.schema.sum())
    logits = torch.full((n_masked, N_ITEMS + 1), -1e9)
    logits[:, 0] = 1e9  # padding: never drawn whatever its logit
    keep = torch.arange(n_masked) % 2 == 0
    logits[keep, original[info.schema][keep]] = 0.0  # even targets: the original item
    logits[~keep, 3] = 0.0  # odd targets: item 3
    corrupted, labels, updates = objective.get_fake_tokens(
        original, info.targets.flatten(), logits, torch.Generator().manual_seed(1)
    )
    assert updates.numel() == 0
    assert torch.equal(corrupted[~info.schema], original[~info.schema])
    assert torch.equal(corrupted[info.schema][keep], original[info.schema][keep])
    assert (corrupted[info.schema][~keep] == 3).all()
    assert torch.equal(labels, corrupted != original)
    assert labels.any() and (info.schema & ~labels).any()  # the original item 3 is no fake


def test_get_fake_tokens_from_the_batch_returns_the_sampled_columns() -> None:
    objective = ReplacementLanguageModeling(N_ITEMS, 8, sample_from_batch=True)
    original = seq()
    target_flat = torch.where(original % 3 == 0, original, 0).flatten()  # items 3, 6, 9, 12
    logits = torch.tensor([[0.0, -1e9, -1e9, -1e9]]).repeat(4, 1).roll(1, dims=1)
    corrupted, labels, updates = objective.get_fake_tokens(original, target_flat, logits)
    assert updates.tolist() == [1, 1, 1, 1]
    assert corrupted[target_flat.view(3, 6) != 0].tolist() == [6, 6, 6, 6]
    assert torch.equal(labels, corrupted != original) and labels.sum() == 3
    with pytest.raises(ValueError, match=r"must be \(4, 4\) over the masked labels"):
        objective.get_fake_tokens(original, target_flat, torch.zeros(4, N_ITEMS + 1))


def test_sample_from_softmax_uses_the_generator_and_never_draws_minus_infinity() -> None:
    logits = torch.zeros(500, 5)
    logits[:, 2] = float("-inf")
    sample = ReplacementLanguageModeling.sample_from_softmax
    first = sample(logits, torch.Generator().manual_seed(0))
    assert torch.equal(first, sample(logits, torch.Generator().manual_seed(0)))
    assert not torch.equal(first, sample(logits, torch.Generator().manual_seed(1)))
    assert (first != 2).all() and set(first.tolist()) == {0, 1, 3, 4}


def test_padding_idx_other_than_zero_is_an_error() -> None:
    with pytest.raises(ValueError, match="padding_idx -1 is not supported"):
        ReplacementLanguageModeling(N_ITEMS, 8, padding_idx=-1)
