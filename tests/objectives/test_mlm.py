"""Masked language modeling: Cloze counts, last-item rows, evaluation and the mask embedding."""

from __future__ import annotations

import pytest
import torch

from seqrec.objectives import MaskedLanguageModeling
from seqrec.objectives.mlm import sample_cloze_schema

N_ITEMS = 50


def rows(lengths: list[int], width: int = 12, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    seq = torch.randint(1, N_ITEMS + 1, (len(lengths), width), generator=gen)
    return seq.masked_fill(torch.arange(width) < width - torch.tensor(lengths)[:, None], 0)


def test_cloze_draws_a_fixed_count_of_real_items_uniformly() -> None:
    real = rows([12, 7, 2, 1, 0]) != 0
    generator = torch.Generator().manual_seed(0)
    hits = torch.zeros(12)
    for _ in range(2000):
        schema = sample_cloze_schema(real, 0.25, generator)
        assert schema.sum(dim=1).tolist() == [3, 2, 1, 1, 0]  # round(0.25 * len), at least 1
        assert not (schema & ~real).any()
        hits += schema[0]
    assert (hits / 2000 - 0.25).abs().max() < 0.04  # every column equally likely


def test_last_item_rows_come_with_the_configured_probability() -> None:
    objective = MaskedLanguageModeling(N_ITEMS, 8, mlm_probability=0.5, last_item_mask_prob=0.3)
    seq = rows([12] * 4000)
    info = objective.compute_masked_targets(seq, training=True, generator=torch.Generator())
    last_only = info.schema.sum(dim=1) == 1
    assert abs(last_only.float().mean().item() - 0.3) < 0.03
    assert info.schema[last_only, -1].all()


def test_evaluation_hides_the_newest_item_only() -> None:
    objective = MaskedLanguageModeling(N_ITEMS, 8)
    seq = rows([12, 3, 0])
    info = objective.compute_masked_targets(seq, training=False)
    assert info.schema.nonzero().tolist() == [[0, 11], [1, 11]]
    assert torch.equal(info.targets[:, -1], seq[:, -1])
    assert (info.input_ids[:2, -1] == N_ITEMS + 1).all()
    assert torch.equal(info.input_ids[:, :-1], seq[:, :-1])


def test_apply_mask_replaces_exactly_the_masked_positions() -> None:
    objective = MaskedLanguageModeling(N_ITEMS, 4)
    inputs = torch.randn(2, 3, 4)
    schema = torch.tensor([[True, False, False], [False, False, True]])
    out = objective.apply_mask_to_inputs(inputs, schema)
    assert torch.equal(out[schema], objective.masked_item_embedding.detach().expand(2, 4))
    assert torch.equal(out[~schema], inputs[~schema])


def test_bidirectional_objectives_refuse_to_evaluate_every_position() -> None:
    with pytest.raises(ValueError, match="last item only"):
        MaskedLanguageModeling(N_ITEMS, 8, eval_on_last_item_seq_only=False)


def test_max_predictions_caps_the_targets_of_long_rows_only() -> None:
    real = rows([12, 12, 4]) != 0
    schema = sample_cloze_schema(real, 0.6, torch.Generator().manual_seed(0), max_predictions=5)
    assert schema.sum(1).tolist() == [5, 5, 2]  # round(0.6 x 12) = 7 capped; round(2.4) = 2
    objective = MaskedLanguageModeling(20, 8, mlm_probability=0.6, max_predictions=3)
    info = objective.compute_masked_targets(rows([12, 6]), True, torch.Generator().manual_seed(1))
    assert info.schema.sum(1).tolist() == [3, 3]
    with pytest.raises(ValueError, match="max_predictions must be at least 1"):
        MaskedLanguageModeling(20, 8, max_predictions=0)


@pytest.mark.parametrize("name", ["mlm", "plm", "rtd", "clm"])
def test_last_item_rows_train_on_their_newest_item_only(name: str) -> None:
    from seqrec.objectives import OBJECTIVES

    objective = OBJECTIVES[name](20, 8)
    ids = rows([12, 9, 7], seed=3)
    forced = torch.tensor([True, False, True])
    info = objective.compute_masked_targets(ids, True, torch.Generator().manual_seed(2), forced)
    column = -2 if name == "clm" else -1  # causal: the column before the newest predicts it
    newest = torch.zeros_like(info.schema)
    newest[:, column] = True
    assert torch.equal(info.schema[forced], newest[forced])
    assert info.targets[forced][:, column].tolist() == ids[forced][:, -1].tolist()
    assert info.schema[1].sum() > 1  # an unmarked row keeps the objective's own targets
