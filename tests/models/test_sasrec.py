"""SASRec: windows one item wider than the encoder, and its three losses checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seqrec.batch import SequenceBatch
from seqrec.losses import gbce_beta, uniform_negatives, unseen_negatives
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


def sampled_loss_by_hand(loss: str, t: float, hidden, targets, negatives, table) -> torch.Tensor:
    positive = (hidden * table[targets]).sum(-1)
    negative = torch.einsum("nd,nkd->nk", hidden, table[negatives])
    beta = gbce_beta(3, N_ITEMS, t) if loss == "gbce" else 1.0
    per_target = -(beta * F.logsigmoid(positive) + F.logsigmoid(-negative).sum(-1))
    # gSASRec's reference averages over the 1 + k logits of a target; SASRec sums them
    return (per_target / (1 + negative.shape[1] if loss == "gbce" else 1.0)).mean()


@pytest.mark.parametrize("architecture", ["original", "recbole"])
@pytest.mark.parametrize("t", [0.0, 0.75])
def test_gbce_matches_the_formula_with_uniform_negatives(architecture: str, t: float) -> None:
    model = make(loss="gbce", n_negatives=3, gbce_t=t, architecture=architecture)
    hidden, targets = hidden_and_targets(model, windows())
    negatives = uniform_negatives(targets, N_ITEMS, 3, torch.Generator().manual_seed(2))
    table = model.encoder.item_embedding.weight
    expected = sampled_loss_by_hand("gbce", t, hidden, targets, negatives, table)
    actual = model.calculate_loss(SequenceBatch(windows()), torch.Generator().manual_seed(2))
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("architecture", ["original", "recbole"])
def test_bce_draws_its_negatives_outside_the_users_items(architecture: str) -> None:
    model = make(loss="bce", n_negatives=3, architecture=architecture)
    seq = windows()
    seen = torch.tensor([[0, 0, *range(1, 21)], list(range(1, 23)), [0] * 21 + [13]])
    hidden, targets = hidden_and_targets(model, seq)
    width = MAX_LEN  # the columns the encoder reads
    schema = (seq[:, :-1] != 0) & (seq[:, 1:] != 0)
    draws = unseen_negatives(seen, N_ITEMS, width * 3, torch.Generator().manual_seed(2))
    negatives = draws.view(len(seq), width, 3)[schema]
    rows = schema.nonzero()[:, 0]
    assert not (negatives[rows < 2] <= 20).any()  # the first two users saw items 1..20 (1..22)
    table = model.encoder.item_embedding.weight
    expected = sampled_loss_by_hand("bce", 0.0, hidden, targets, negatives, table)
    batch = SequenceBatch(seq, seen=seen)
    actual = model.calculate_loss(batch, torch.Generator().manual_seed(2))
    torch.testing.assert_close(actual, expected)


def test_bce_without_seen_items_excludes_the_window() -> None:
    model = make(loss="bce", n_negatives=3)
    seq = windows()
    hidden, targets = hidden_and_targets(model, seq)
    draws = unseen_negatives(
        seq.sort(1).values, N_ITEMS, MAX_LEN * 3, torch.Generator().manual_seed(4)
    )
    schema = (seq[:, :-1] != 0) & (seq[:, 1:] != 0)
    negatives = draws.view(len(seq), MAX_LEN, 3)[schema]
    table = model.encoder.item_embedding.weight
    expected = sampled_loss_by_hand("bce", 0.0, hidden, targets, negatives, table)
    actual = model.calculate_loss(SequenceBatch(seq), torch.Generator().manual_seed(4))
    torch.testing.assert_close(actual, expected)


def test_only_bce_asks_the_training_data_for_the_users_items() -> None:
    assert make(loss="bce").uses_seen_items
    assert not make(loss="ce").uses_seen_items and not make(loss="gbce").uses_seen_items


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


def kang_and_mcauley(model: SASRec, seq: torch.Tensor) -> torch.Tensor:
    """The original encoder written out from kang205/SASRec's equations (dropout off): (B, L, D)."""
    enc, d, heads = model.encoder, model.config.hidden_size, model.config.n_heads
    width = seq.shape[1]
    real = (seq != 0).float().unsqueeze(-1)
    s = enc.item_embedding.weight[seq] * d**0.5 + enc.position_embedding.weight[MAX_LEN - width :]
    s = s * real
    visible = torch.ones(width, width).tril().bool() & (seq != 0)[:, None, :]  # (B, L, L)
    visible = visible | torch.eye(width, dtype=torch.bool)
    for block in enc.blocks:
        q_in = F.layer_norm(s, (d,), block.query_norm.weight, block.query_norm.bias, 1e-8)
        q = F.linear(q_in, block.query.weight, block.query.bias)
        k, v = F.linear(s, block.key_value.weight, block.key_value.bias).chunk(2, -1)
        outs = []
        for h in range(heads):  # heads split along the hidden dimension, as tf.split does
            part = slice(h * d // heads, (h + 1) * d // heads)
            logits = q[..., part] @ k[..., part].transpose(1, 2) / (d // heads) ** 0.5
            weights = logits.masked_fill(~visible, float("-inf")).softmax(-1)
            outs.append(weights @ v[..., part])
        x = q_in + torch.cat(outs, -1)  # residual on the normalised queries, no projection
        y = F.layer_norm(x, (d,), block.ffn_norm.weight, block.ffn_norm.bias, 1e-8)
        inner = F.relu(F.linear(y, block.ffn_in.weight, block.ffn_in.bias))
        s = (y + F.linear(inner, block.ffn_out.weight, block.ffn_out.bias)) * real
    return F.layer_norm(s, (d,), enc.norm.weight, enc.norm.bias, 1e-8)


def test_the_original_encoder_computes_kang_and_mcauleys_block() -> None:
    model = make(architecture="original", inner_size=None).eval()
    assert model.config.resolved() == (16, "relu", 1e-8)  # width d, ReLU, the original's eps
    seq = windows()[:, 1:]
    real = seq != 0
    torch.testing.assert_close(model(seq)[real], kang_and_mcauley(model, seq)[real])


def test_architecture_defaults_follow_the_variant() -> None:
    assert make(architecture="recbole", inner_size=None).config.resolved() == (64, "gelu", 1e-12)
    assert make(architecture="original", inner_size=48).config.resolved()[0] == 48
    with pytest.raises(ValueError, match=r"SASRecConfig\.architecture"):
        make(architecture="pre-ln")


@pytest.mark.parametrize("architecture", ["original", "recbole"])
def test_both_encoders_ignore_left_padding_and_the_future(architecture: str) -> None:
    model = make(architecture=architecture).eval()
    history = windows()[:, 1:]
    padded = torch.cat([torch.zeros(3, 2, dtype=torch.long), history[:, 2:]], dim=1)
    narrow = model.full_sort_predict(SequenceBatch(history[:, 2:]))
    torch.testing.assert_close(model.full_sort_predict(SequenceBatch(padded)), narrow)
    changed = history.clone()
    changed[0, -1] = 29
    torch.testing.assert_close(model(changed)[0, :-1], model(history)[0, :-1])


def test_sampled_softmax_scores_the_targets_against_one_pool_drawn_from_the_generator() -> None:
    from seqrec.data.corpus import Sequences
    from seqrec.losses import proposal_log_q, sample_pool, sampled_softmax_ce

    model = make(loss="sampled", n_negatives=7, negative_sampler="popular", sample_alpha=0.5)
    model.prepare_from_training(Sequences(np.array([0, 6]), np.array([1, 1, 1, 2, 3, 3])))
    hidden, targets = hidden_and_targets(model, windows())
    log_q = proposal_log_q(model.sampled.counts, "popular", 0.5)
    pool = sample_pool(log_q.exp(), 7, torch.Generator().manual_seed(2))
    table = model.encoder.item_embedding.weight
    expected = sampled_softmax_ce(hidden, table, None, targets, pool, log_q)
    actual = model.calculate_loss(SequenceBatch(windows()), torch.Generator().manual_seed(2))
    torch.testing.assert_close(actual, expected)
