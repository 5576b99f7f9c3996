"""Permutation language modeling: XLNet span targets and the permutation attention mask."""

from __future__ import annotations

import torch

from seqrec.nn import TransformerEncoder
from seqrec.objectives import PermutationLanguageModeling
from seqrec.objectives.plm import span_schema

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


def test_non_targets_never_see_targets_and_targets_see_each_other_in_one_order() -> None:
    objective = PermutationLanguageModeling(N_ITEMS, 8, plm_probability=0.4, max_span_length=3)
    seq = rows([16, 16, 9], width=16, seed=1)
    info = objective.compute_masked_targets(seq, True, torch.Generator().manual_seed(2))
    allowed = info.attention_mask  # (B, L, L), True = may attend
    schema = info.schema
    assert not (allowed & ~schema[:, :, None] & schema[:, None, :]).any()
    assert (allowed | schema[:, None, :]).all()  # every position sees every non-target
    between = allowed & schema[:, :, None] & schema[:, None, :]
    between = between & ~torch.eye(16, dtype=torch.bool)
    assert not (between & between.transpose(1, 2)).any()  # never both ways
    two_steps = (between.float() @ between.float()) > 0
    assert not (two_steps & ~between).any()  # transitive: a factorisation order


def test_no_target_item_reaches_any_hidden_state() -> None:
    objective = PermutationLanguageModeling(N_ITEMS, 8, plm_probability=0.3)
    encoder = TransformerEncoder(N_ITEMS + 2, max_len=12, hidden_size=8, inner_size=16).eval()
    seq = rows([12, 7], width=12, seed=3)
    info = objective.compute_masked_targets(seq, True, torch.Generator().manual_seed(4))
    hidden = objective.encode(encoder, info.input_ids, info.attention_mask)
    other = seq.masked_fill(info.schema, 1)  # every target replaced by item 1
    again = objective.compute_masked_targets(other, True, torch.Generator().manual_seed(4))
    assert torch.equal(again.schema, info.schema)
    torch.testing.assert_close(
        objective.encode(encoder, again.input_ids, again.attention_mask), hidden
    )


def test_permute_all_keeps_one_item_as_context() -> None:
    objective = PermutationLanguageModeling(N_ITEMS, 8, permute_all=True)
    seq = rows([10, 2, 1], width=10, seed=5)
    info = objective.compute_masked_targets(seq, True, torch.Generator().manual_seed(6))
    assert info.schema.sum(dim=1).tolist() == [9, 1, 1]


def test_evaluation_hides_the_last_column_from_the_history() -> None:
    objective = PermutationLanguageModeling(N_ITEMS, 8)
    ids = objective.inference_ids(rows([5, 2], width=5, seed=7), max_len=6)
    info = objective.compute_masked_targets(ids, training=False)
    assert info.schema[:, -1].all() and info.schema.sum() == 2
    assert not info.attention_mask[:, :-1, -1].any()
    assert info.attention_mask[:, -1, :-1].all()  # (each position also sees itself)
