"""BERT4Rec: Cloze masking, the prediction column, the output layer and config errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqrec.batch import SequenceBatch
from seqrec.models.bert4rec import BERT4Rec, BERT4RecConfig

N_ITEMS = 30
MAX_LEN = 10


def make(**overrides) -> BERT4Rec:
    torch.manual_seed(0)
    config = dict(n_items=N_ITEMS, max_len=MAX_LEN, hidden_size=16, inner_size=32)
    return BERT4Rec(BERT4RecConfig(**(config | overrides)))


def windows(lengths: list[int], seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randint(1, N_ITEMS + 1, (len(lengths), MAX_LEN), generator=gen)
    return rows.masked_fill(torch.arange(MAX_LEN) < MAX_LEN - torch.tensor(lengths)[:, None], 0)


def test_last_item_samples_train_the_column_that_prediction_reads() -> None:
    model = make(last_item_mask_prob=1.0)
    history = windows([MAX_LEN, 6, 1])
    masked_seq, positions, targets = model.reconstruct_train_data(history)
    test_seq = model.reconstruct_test_data(history)
    assert test_seq.shape == history.shape  # so the mask also gets the same position embedding
    mask_columns = (test_seq == model.mask_token).nonzero()[:, 1]
    assert (mask_columns == MAX_LEN - 1).all()
    assert positions.nonzero()[:, 1].tolist() == mask_columns.tolist()
    assert (masked_seq[positions] == model.mask_token).all()
    assert torch.equal(targets[:, -1], history[:, -1])


def test_test_data_drops_the_oldest_item_and_appends_the_mask() -> None:
    model = make()
    history = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [0, 0, 0, 0, 0, 0, 0, 0, 4, 5]])
    expected = torch.tensor([[2, 3, 4, 5, 6, 7, 8, 9, 10, 31], [0, 0, 0, 0, 0, 0, 0, 4, 5, 31]])
    assert torch.equal(model.reconstruct_test_data(history), expected)
    # a history narrower than max_len keeps every column
    assert model.reconstruct_test_data(history[:, -3:]).tolist() == [[8, 9, 10, 31], [0, 4, 5, 31]]


def test_cloze_masks_round_ratio_times_length_items_with_the_mask_token() -> None:
    model = make(mask_ratio=0.3, last_item_mask_prob=0.0)
    history = windows([MAX_LEN, 5, 1, 0])
    generator = torch.Generator().manual_seed(3)
    for _ in range(20):
        masked_seq, positions, targets = model.reconstruct_train_data(history, generator)
        assert positions.sum(dim=1).tolist() == [3, 2, 1, 0]  # round(0.3 * len), at least 1
        assert torch.equal(masked_seq, history.masked_fill(positions, model.mask_token))
        assert torch.equal(targets, history * positions)


def test_loss_is_cross_entropy_of_the_full_hidden_states_at_masked_positions() -> None:
    """Gathering before projecting (and the pruned last block) changes nothing."""
    model = make(hidden_dropout=0.0, attn_dropout=0.0)
    batch = SequenceBatch(windows([MAX_LEN, 7, 3, 1], seed=1))
    loss = model.calculate_loss(batch, torch.Generator().manual_seed(9))
    masked_seq, positions, targets = model.reconstruct_train_data(
        batch.item_seq, torch.Generator().manual_seed(9)
    )
    hidden = BERT4Rec.gather_positions(model(masked_seq), positions)  # (N, D)
    transformed = model.head_norm(F.gelu(model.head_dense(hidden)))
    logits = transformed @ model.encoder.item_embedding.weight[1 : N_ITEMS + 1].T
    expected = F.cross_entropy(logits + model.output_bias[1:], targets[positions] - 1)
    torch.testing.assert_close(loss, expected)


def test_scores_are_the_dot_product_with_the_item_table_plus_a_bias() -> None:
    model = make().eval()
    history = windows([MAX_LEN, 4], seed=2)
    hidden = model(model.reconstruct_test_data(history))[:, -1]
    transformed = model.head_norm(F.gelu(model.head_dense(hidden)))
    expected = transformed @ model.encoder.item_embedding.weight[: N_ITEMS + 1].T
    expected = expected + model.output_bias
    scores = model.full_sort_predict(SequenceBatch(history))
    torch.testing.assert_close(scores[:, 1:], expected[:, 1:])
    assert torch.isneginf(scores[:, 0]).all()


def test_bert_replacement_shows_the_mask_random_items_and_the_items_themselves() -> None:
    model = make(replacement="bert", mask_ratio=0.5, last_item_mask_prob=0.0)
    history = windows([MAX_LEN] * 400, seed=3)
    masked_seq, positions, _ = model.reconstruct_train_data(
        history, torch.Generator().manual_seed(0)
    )
    shown = masked_seq[positions]
    original = history[positions]
    mask = (shown == model.mask_token).float().mean()
    kept = (shown == original).float().mean()
    assert abs(mask - 0.8) < 0.02
    assert abs(kept - (0.1 + 0.1 / N_ITEMS)) < 0.02  # a random item may be the item itself
    assert torch.equal(masked_seq[~positions], history[~positions])


def test_the_mask_position_and_the_test_mask_share_the_objective_embedding() -> None:
    model = make().eval()
    seq = model.reconstruct_test_data(windows([MAX_LEN], seed=4))
    changed = model.objective.masked_item_embedding.detach() + 1.0
    before = model(seq)
    with torch.no_grad():
        model.objective.masked_item_embedding.copy_(changed)
    assert not torch.allclose(model(seq)[:, -1], before[:, -1])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"objective": "clm"}, "needs causal attention, which BERT4Rec does not support"),
        ({"objective_params": {"mlm_probability": 0.3}}, "BERT4RecConfig.mask_ratio"),
        ({"objective_params": {"span": 3}}, "unknown parameter.*span.*valid: .*eval_on_last"),
        ({"objective": "plm", "replacement": "bert"}, "replacement must be 'mask'"),
        ({"mask_ratio": 1.2}, "BERT4RecConfig.mask_ratio"),
        ({"loss": "bce"}, "BERT4RecConfig.loss"),
    ],
)
def test_config_errors_name_the_field(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        make(**overrides)


def test_objective_parameters_reach_the_objective() -> None:
    model = make(objective="plm", mask_ratio=0.25, objective_params={"max_span_length": 2})
    assert model.objective.plm_probability == 0.25
    assert model.objective.max_span_length == 2
    rtd = make(objective="rtd", objective_params={"sample_from_batch": True})
    assert rtd.objective.sample_from_batch and rtd.objective.mlm_probability == 0.2


def test_multi_hot_embed_gathers_what_gather_positions_gathers() -> None:
    hidden = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    masked_index = torch.tensor([[1, 4], [0, 2]])  # RecBole: (B, mask_len) positions
    multi_hot = BERT4Rec.multi_hot_embed(masked_index, 5).view(2, 2, 5)  # (B, mask_len, L)
    positions = torch.zeros(2, 5, dtype=torch.bool)
    positions[0, [1, 4]] = positions[1, [0, 2]] = True
    torch.testing.assert_close(
        (multi_hot @ hidden).flatten(0, 1), BERT4Rec.gather_positions(hidden, positions)
    )
