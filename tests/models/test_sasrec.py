"""SASRec: windows one item wider than the encoder, and its three losses checked by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqrec.batch import SequenceBatch
from seqrec.losses import gbce_beta, uniform_negatives
from seqrec.models.sasrec import SASRec, SASRecConfig

N_ITEMS = 30
MAX_LEN = 6


def make(**overrides) -> SASRec:
    torch.manual_seed(0)
    config = dict(n_items=N_ITEMS, max_len=MAX_LEN, hidden_size=16, inner_size=32,
                  hidden_dropout=0.0, attn_dropout=0.0)  # fmt: skip
    return SASRec(SASRecConfig(**(config | overrides)))


def windows() -> torch.Tensor:
    """Training windows (B, MAX_LEN + 1) with 7, 4 and 2 items."""
    return torch.tensor([[3, 9, 4, 1, 7, 2, 8], [0, 0, 0, 5, 6, 11, 30], [0, 0, 0, 0, 0, 12, 13]])


def hidden_and_targets(model: SASRec, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every column with an item before and after it: the hidden state and the next item."""
    hidden = model(seq[:, :-1])  # (B, L, D): the encoder reads the first max_len columns
    keep = (seq[:, :-1] != 0) & (seq[:, 1:] != 0)
    return hidden[keep], seq[:, 1:][keep]


def test_training_windows_are_one_item_wider_than_the_encoder() -> None:
    model = make()
    assert model.train_seq_len == MAX_LEN + 1
    assert model.accepted_objectives == ("clm",)


def test_ce_loss_is_the_full_softmax_over_every_next_item() -> None:
    model = make(loss="ce")
    hidden, targets = hidden_and_targets(model, windows())
    assert len(targets) == 6 + 3 + 1
    logits = hidden @ model.encoder.item_embedding.weight[1:].T
    expected = F.cross_entropy(logits, targets - 1)
    torch.testing.assert_close(model.calculate_loss(SequenceBatch(windows())), expected)


@pytest.mark.parametrize(("loss", "t"), [("bce", 0.75), ("gbce", 0.0), ("gbce", 0.75)])
def test_sampled_losses_match_the_formula(loss: str, t: float) -> None:
    model = make(loss=loss, n_negatives=3, gbce_t=t)
    hidden, targets = hidden_and_targets(model, windows())
    negatives = uniform_negatives(targets, N_ITEMS, 3, torch.Generator().manual_seed(2))
    table = model.encoder.item_embedding.weight
    positive = (hidden * table[targets]).sum(-1)
    negative = torch.einsum("nd,nkd->nk", hidden, table[negatives])
    beta = gbce_beta(3, N_ITEMS, t) if loss == "gbce" else 1.0
    expected = -(beta * F.logsigmoid(positive) + F.logsigmoid(-negative).sum(-1)).mean()
    actual = model.calculate_loss(SequenceBatch(windows()), torch.Generator().manual_seed(2))
    torch.testing.assert_close(actual, expected)


def test_gbce_with_t_zero_is_bce() -> None:
    batch = SequenceBatch(windows())
    bce = make(loss="bce", n_negatives=4).calculate_loss(batch, torch.Generator().manual_seed(1))
    gbce = make(loss="gbce", n_negatives=4, gbce_t=0.0)
    torch.testing.assert_close(gbce.calculate_loss(batch, torch.Generator().manual_seed(1)), bce)


def test_train_on_last_item_only_predicts_the_newest_item() -> None:
    model = make(loss="ce", objective_params={"train_on_last_item_seq_only": True})
    seq = windows()
    hidden = model(seq[:, :-1])[:, -1]  # the last column the encoder reads
    logits = hidden @ model.encoder.item_embedding.weight[1:].T
    expected = F.cross_entropy(logits, seq[:, -1] - 1)
    torch.testing.assert_close(model.calculate_loss(SequenceBatch(seq)), expected)


def test_prediction_reads_the_newest_items_and_scores_the_next() -> None:
    model = make().eval()
    history = windows()[:, 1:]  # (B, MAX_LEN)
    hidden = model(history)[:, -1]
    expected = hidden @ model.encoder.item_embedding.weight.T
    scores = model.full_sort_predict(SequenceBatch(history))
    torch.testing.assert_close(scores[:, 1:], expected[:, 1:])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"objective": "mlm"}, "needs bidirectional attention, which SASRec does not support"),
        ({"loss": "bpr"}, "SASRecConfig.loss"),
        ({"n_negatives": 30}, "SASRecConfig.n_negatives"),
        ({"objective_params": {"mlm_probability": 0.2}}, "unknown parameter.*mlm_probability"),
    ],
)
def test_config_errors_name_the_field(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        make(**overrides)
