"""Causal language modeling: next-item targets, and the label never reaches the encoder."""

from __future__ import annotations

import torch

from seqrec.nn import TransformerEncoder
from seqrec.objectives import CausalLanguageModeling

WINDOWS = torch.tensor([[4, 5, 6, 7, 8], [0, 0, 2, 3, 9], [0, 0, 0, 0, 1]])


def test_every_item_with_a_predecessor_is_the_target_of_the_column_before_it() -> None:
    info = CausalLanguageModeling(10, 8).compute_masked_targets(WINDOWS, training=True)
    assert info.targets.tolist() == [[5, 6, 7, 8, 0], [0, 0, 3, 9, 0], [0, 0, 0, 0, 0]]
    assert torch.equal(info.schema, info.targets > 0)
    assert torch.equal(info.input_ids, WINDOWS)


def test_last_item_only_keeps_the_newest_item_as_the_single_target() -> None:
    objective = CausalLanguageModeling(10, 8, train_on_last_item_seq_only=True)
    info = objective.compute_masked_targets(WINDOWS, training=True)
    assert info.targets.tolist() == [[0, 0, 0, 8, 0], [0, 0, 0, 9, 0], [0, 0, 0, 0, 0]]
    evaluation = CausalLanguageModeling(10, 8).compute_masked_targets(WINDOWS, training=False)
    assert torch.equal(evaluation.targets, info.targets)


def test_the_label_never_reaches_the_encoder() -> None:
    objective = CausalLanguageModeling(10, 8, train_on_last_item_seq_only=True)
    encoder = TransformerEncoder(11, max_len=4, hidden_size=8, inner_size=16).eval()
    info = objective.compute_masked_targets(WINDOWS, training=True)
    hidden, targets = objective.target_states(encoder, info)
    assert targets.tolist() == [8, 9]
    changed = WINDOWS.clone()
    changed[:, -1] = 10  # another label: the hidden states that predict it stay the same
    info_changed = objective.compute_masked_targets(changed, training=True)
    torch.testing.assert_close(objective.target_states(encoder, info_changed)[0], hidden)
    assert objective.target_states(encoder, info_changed)[1].tolist() == [10, 10]


def test_prediction_reads_the_whole_history_and_no_mask() -> None:
    objective = CausalLanguageModeling(10, 8)
    ids = objective.inference_ids(WINDOWS[:, 1:], max_len=4)
    assert ids[:, :4].tolist() == WINDOWS[:, 1:].tolist() and (ids[:, 4] == 11).all()
    assert objective.train_width(4) == 5
    assert not any(True for _ in objective.parameters())
