"""Permutation language modeling: XLNet span targets, factorisation order and two streams."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqrec.nn import TransformerEncoder
from seqrec.objectives import MaskedLanguageModeling, MaskingInfo, PermutationLanguageModeling
from seqrec.objectives.plm import permutation_attention, span_schema

N_ITEMS = 40


def rows(lengths: list[int], width: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    seq = torch.randint(1, N_ITEMS + 1, (len(lengths), width), generator=gen)
    return seq.masked_fill(torch.arange(width) < width - torch.tensor(lengths)[:, None], 0)


def run_lengths(row: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-d bool tensor."""
    padded = torch.cat(
        [torch.zeros(1, dtype=torch.int8), row.to(torch.int8), torch.zeros(1, dtype=torch.int8)]
    )
    edges = padded.diff().nonzero().flatten()
    return (edges[1::2] - edges[::2]).tolist()


def test_spans_are_short_runs_covering_about_plm_probability_of_the_items() -> None:
    """Two spans may touch (one ends its context, the next starts its own), three cannot."""
    real = rows([60] * 300 + [25] * 100, width=60) != 0
    schema = span_schema(real, 1 / 6, 4, torch.Generator().manual_seed(0))
    assert not (schema & ~real).any()
    runs = [length for row in schema for length in run_lengths(row)]
    assert max(runs) <= 2 * 4
    assert sum(length > 4 for length in runs) < 0.05 * len(runs)
    fraction = schema[:300].float().mean().item()
    assert abs(fraction - 1 / 6) < 0.02


def test_permute_all_keeps_one_item_as_context() -> None:
    objective = PermutationLanguageModeling(N_ITEMS, 8, permute_all=True)
    seq = rows([10, 2, 1], width=10, seed=5)
    info = objective.compute_masked_targets(seq, True, torch.Generator().manual_seed(6))
    assert info.schema.sum(dim=1).tolist() == [9, 1, 1]


def encoder(max_len: int = 12, n_layers: int = 2) -> TransformerEncoder:
    torch.manual_seed(0)
    model = TransformerEncoder(N_ITEMS + 2, max_len, hidden_size=16, n_layers=n_layers,
                               n_heads=2, inner_size=32)  # fmt: skip
    return model.eval()


def logits(model: TransformerEncoder, hidden: torch.Tensor) -> torch.Tensor:
    return hidden @ model.item_embedding.weight[1 : N_ITEMS + 1].T  # (N, n_items)


def fixed_info(seq: torch.Tensor, targets: dict[int, int]) -> MaskingInfo:
    """One row, targets ``{column: rank}`` in the factorisation order (0 = first)."""
    schema = torch.zeros_like(seq, dtype=torch.bool)
    rank = torch.full_like(seq, -1)
    for column, place in targets.items():
        schema[0, column] = True
        rank[0, column] = place
    attention = permutation_attention(schema, rank)
    return MaskingInfo(schema, torch.where(schema, seq, 0), seq, attention)


def test_the_content_mask_is_a_factorisation_order_after_the_non_targets() -> None:
    objective = PermutationLanguageModeling(N_ITEMS, 8, plm_probability=0.4, max_span_length=3)
    seq = rows([16, 16, 9], width=16, seed=1)
    info = objective.compute_masked_targets(seq, True, torch.Generator().manual_seed(2))
    allowed, schema = info.attention_mask, info.schema  # (B, L, L) True = may attend
    assert torch.equal(info.input_ids, seq)  # the content stream reads every item itself
    assert not (allowed & ~schema[:, :, None] & schema[:, None, :]).any()  # non-targets: no target
    assert (allowed | schema[:, None, :]).all()  # everyone sees every non-target
    between = allowed & schema[:, :, None] & schema[:, None, :]
    assert (between.diagonal(dim1=1, dim2=2) == schema).all()  # a target sees its own content
    between = between & ~torch.eye(16, dtype=torch.bool)
    pairs = schema[:, :, None] & schema[:, None, :] & ~torch.eye(16, dtype=torch.bool)
    assert torch.equal(between | between.transpose(1, 2), pairs)  # one way for every pair
    two_steps = (between.float() @ between.float()) > 0
    assert not (two_steps & ~between).any()  # transitive: a total order


def test_a_target_reads_earlier_targets_in_the_order_but_never_its_own_item() -> None:
    """Targets at columns 2, 3 and 6, in the order 6, 2, 3; column 0 is context."""
    model, objective = encoder(), PermutationLanguageModeling(N_ITEMS, 16)
    seq = rows([12], width=12, seed=3)
    info = fixed_info(seq, {2: 1, 3: 2, 6: 0})
    base = logits(model, objective.hidden_at(model, info, info.schema))  # (3, n_items)
    # changed column -> does it change the logits of the targets at columns (2, 3, 6)?
    expected = {
        2: (False, True, False),  # its own item: no; the later target 3 reads it
        3: (False, False, False),  # the last target in the order is read by none
        6: (True, True, False),  # the first target is read by both later ones
        0: (True, True, True),  # everyone reads the context
    }
    for column, influenced in expected.items():
        other = seq.clone()
        other[0, column] = other[0, column] % N_ITEMS + 1
        changed = MaskingInfo(info.schema, info.targets, other, info.attention_mask)
        scores = logits(model, objective.hidden_at(model, changed, info.schema))
        moved = (scores - base).abs().amax(dim=1) > 1e-4  # (3,)
        assert tuple(moved.tolist()) == influenced, column
        torch.testing.assert_close(scores[~moved], base[~moved])


def test_no_target_ever_reads_its_own_item_under_random_masks() -> None:
    model, objective = encoder(), PermutationLanguageModeling(N_ITEMS, 16, plm_probability=0.4)
    seq = rows([12, 9, 5, 2], width=12, seed=4)
    info = objective.compute_masked_targets(seq, True, torch.Generator().manual_seed(5))
    base = objective.hidden_at(model, info, info.schema)  # (N, D), row-major
    for index, (row, column) in enumerate(info.schema.nonzero().tolist()):
        other = seq.clone()
        other[row, column] = other[row, column] % N_ITEMS + 1
        changed = MaskingInfo(info.schema, info.targets, other, info.attention_mask)
        torch.testing.assert_close(objective.hidden_at(model, changed, info.schema)[index],
                                   base[index])  # fmt: skip


def test_plm_and_mlm_differ_under_the_same_targets() -> None:
    """MLM's predictions are a function of the masked sequence; PLM's read earlier targets."""
    model = encoder()
    plm, mlm = PermutationLanguageModeling(N_ITEMS, 16), MaskedLanguageModeling(N_ITEMS, 16)
    mlm.masked_item_embedding = plm.masked_item_embedding
    seq = rows([12, 12, 8], width=12, seed=6)
    plm_info = plm.compute_masked_targets(seq, True, torch.Generator().manual_seed(7))
    schema = plm_info.schema
    mlm_info = MaskingInfo(schema, plm_info.targets, seq.masked_fill(schema, N_ITEMS + 1))
    plm_hidden, targets = plm.target_states(model, plm_info)
    mlm_hidden, mlm_targets = mlm.target_states(model, mlm_info)
    assert torch.equal(targets, mlm_targets)
    plm_loss = F.cross_entropy(logits(model, plm_hidden), targets - 1)
    mlm_loss = F.cross_entropy(logits(model, mlm_hidden), targets - 1)
    assert abs(plm_loss.item() - mlm_loss.item()) > 1e-3
    assert not torch.allclose(plm_hidden, mlm_hidden, atol=1e-3)
    # other target items, same context: MLM cannot tell, PLM can
    other = seq.masked_fill(schema, 1)
    plm_other = MaskingInfo(schema, plm_info.targets, other, plm_info.attention_mask)
    mlm_other = MaskingInfo(schema, plm_info.targets, other.masked_fill(schema, N_ITEMS + 1))
    torch.testing.assert_close(mlm.target_states(model, mlm_other)[0], mlm_hidden)
    assert not torch.allclose(plm.target_states(model, plm_other)[0], plm_hidden, atol=1e-4)


def test_short_rows_give_finite_losses_and_gradients() -> None:
    model = encoder()
    model.train()
    objective = PermutationLanguageModeling(N_ITEMS, 16)
    seq = rows([1, 2, 0, 1, 12], width=12, seed=8)
    info = objective.compute_masked_targets(seq, True, torch.Generator().manual_seed(9))
    assert info.schema[[0, 3], -1].all()  # a one-item row's only item is its target
    hidden, targets = objective.target_states(model, info)
    loss = F.cross_entropy(logits(model, hidden), targets - 1)
    assert torch.isfinite(hidden).all() and torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert objective.masked_item_embedding.grad is not None


def test_left_padding_does_not_change_the_target_states() -> None:
    model, objective = encoder(max_len=16), PermutationLanguageModeling(N_ITEMS, 16)
    seq = rows([10, 6, 1], width=10, seed=10)
    info = objective.compute_masked_targets(seq, True, torch.Generator().manual_seed(11))
    rank = torch.rand(seq.shape, generator=torch.Generator().manual_seed(12)).argsort(1).argsort(1)
    info = MaskingInfo(info.schema, info.targets, seq, permutation_attention(info.schema, rank))
    narrow = objective.hidden_at(model, info, info.schema)
    pad = torch.zeros(3, 6, dtype=torch.long)
    wide_schema = torch.cat([pad.bool(), info.schema], dim=1)
    wide_rank = torch.cat([pad, rank], dim=1)
    wide_seq = torch.cat([pad, seq], dim=1)
    wide = MaskingInfo(wide_schema, torch.where(wide_schema, wide_seq, 0), wide_seq,
                       permutation_attention(wide_schema, wide_rank))  # fmt: skip
    torch.testing.assert_close(objective.hidden_at(model, wide, wide_schema), narrow,
                               atol=1e-5, rtol=0)  # fmt: skip


def test_prediction_reads_the_whole_history_and_the_history_never_sees_the_slot() -> None:
    objective = PermutationLanguageModeling(N_ITEMS, 8)
    ids = objective.inference_ids(rows([5, 2], width=5, seed=7), max_len=6)
    info = objective.compute_masked_targets(ids, training=False)
    assert info.schema[:, -1].all() and info.schema.sum() == 2
    assert not info.attention_mask[:, :-1, -1].any()  # no history column sees the slot
    assert info.attention_mask[:, :-1, :-1].all()  # the history is bidirectional
    assert info.attention_mask[:, -1].all()  # the slot's query sees all but itself (encoder)


def test_last_item_training_windows_train_exactly_the_column_prediction_reads() -> None:
    model = encoder(max_len=8)
    objective = PermutationLanguageModeling(N_ITEMS, 16, last_item_mask_prob=1.0)
    windows = rows([8, 5, 2], width=8, seed=13)
    info = objective.compute_masked_targets(windows, True, torch.Generator().manual_seed(14))
    hidden, targets = objective.target_states(model, info)
    assert torch.equal(targets, windows[:, -1])
    history = windows[:, :-1]  # what the window shows before its newest item
    torch.testing.assert_close(objective.next_item_states(model, history), hidden)


def test_padding_idx_other_than_zero_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"padding_idx 3 is not supported.*must be 0"):
        PermutationLanguageModeling(N_ITEMS, 8, padding_idx=3)
    assert PermutationLanguageModeling(N_ITEMS, 8, padding_idx=0).padding_idx == 0
