"""The contract every registered model must keep: the transformers with every objective they
accept, GRU4Rec and GRU4RecF with every fusion (on synthetic item features of every kind)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import polars as pl
import pytest
import torch
from safetensors.torch import load_file, save_file

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import Sequences, Vocabulary
from seqrec.data.features import build_feature_table
from seqrec.data.splits import EvalSet
from seqrec.evaluation.evaluator import Evaluator
from seqrec.evaluation.protocols import SampledRanking
from seqrec.models import MODELS, build_model
from seqrec.models.gru4recf import FUSIONS
from seqrec.models.protocol import SequentialRecommender
from seqrec.nn.features import load_item_tables

N_ITEMS = 20
MAX_LEN = 8
TRANSFORMER_CASES = [
    (name, objective)
    for name, (model_class, _) in MODELS.items()
    for objective in getattr(model_class, "accepted_objectives", ())
]
RECURRENT_CASES = [("gru4rec", "gru"), *[("gru4recf", fusion) for fusion in FUSIONS]]
CASES = TRANSFORMER_CASES + RECURRENT_CASES
CAUSAL_CASES = [
    case
    for case in TRANSFORMER_CASES
    if MODELS[case[0]][0].supported_attention == frozenset({"causal"})
] + RECURRENT_CASES
NO_DROPOUT = {
    "transformer": {"hidden_dropout": 0.0, "attn_dropout": 0.0},
    "recurrent": {"dropout_embed": 0.0, "dropout_hidden": 0.0},
}


def item_features():
    """A feature table of every kind for items 1..N_ITEMS (some values missing)."""
    gen = np.random.default_rng(7)
    n = N_ITEMS
    frame = pl.DataFrame(
        {
            "id": [str(i) for i in range(1, n + 1)],
            "genre": [None if i % 7 == 0 else f"g{i % 4}" for i in range(n)],
            "tags": [[f"t{(i + k) % 6}" for k in range(i % 3)] for i in range(n)],
            "price": [None if i % 5 == 0 else float(gen.normal()) for i in range(n)],
            "vector": [gen.normal(size=3).tolist() for _ in range(n)],
        }
    )
    return build_feature_table(frame, Vocabulary(np.array(frame["id"].to_list()), offset=1))


def family(name: str) -> str:
    return "recurrent" if name in ("gru4rec", "gru4recf") else "transformer"


def make_model(name: str, variant: str, **overrides) -> torch.nn.Module:
    """A small model; ``variant`` is the objective of a transformer or the fusion of GRU4RecF."""
    torch.manual_seed(0)
    if family(name) == "transformer":
        config = dict(
            n_items=N_ITEMS, max_len=MAX_LEN, hidden_size=16, n_layers=2, n_heads=2,
            inner_size=32, hidden_dropout=0.1, attn_dropout=0.1, objective=variant,
        )  # fmt: skip
        return build_model(name, **(config | overrides))
    config = dict(
        n_items=N_ITEMS, max_len=MAX_LEN, embedding_size=16, hidden_size=12, n_layers=2,
        dropout_embed=0.1, dropout_hidden=0.1,
    )  # fmt: skip
    if name == "gru4rec":
        return build_model(name, **(config | overrides))
    table = item_features()
    config |= {"fusion": variant, "feature_size": 8, "item_feature_spec": table.spec()}
    model = build_model(name, **(config | overrides))
    load_item_tables(model, table)
    return model


def states(model: torch.nn.Module, item_seq: torch.Tensor) -> torch.Tensor:
    """Per-column output states (B, L, D): ``encode`` of the recurrent models, ``forward`` of the
    transformers."""
    return model.encode(item_seq) if hasattr(model, "encode") else model(item_seq)


def left_padded(lengths: list[int], width: int, seed: int = 0) -> torch.Tensor:
    """Rows of random items with the given lengths, left-padded to ``width``: (B, width)."""
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randint(1, N_ITEMS + 1, (len(lengths), width), generator=gen)
    columns = torch.arange(width)
    return rows.masked_fill(columns < width - torch.tensor(lengths)[:, None], 0)


def training_batch(model: torch.nn.Module) -> SequenceBatch:
    width = model.train_seq_len
    return SequenceBatch(left_padded([width, width, width - 3, 2, 1, width], width))


def history_batch() -> SequenceBatch:
    return SequenceBatch(left_padded([MAX_LEN, 5, 3, 1], MAX_LEN, seed=1))


@pytest.fixture(params=CASES, ids=[f"{name}-{objective}" for name, objective in CASES])
def case(request) -> tuple[str, str]:
    return request.param


@pytest.fixture(
    params=TRANSFORMER_CASES, ids=[f"{name}-{objective}" for name, objective in TRANSFORMER_CASES]
)
def transformer_case(request) -> tuple[str, str]:
    return request.param


def test_every_model_is_covered() -> None:
    assert {name for name, _ in CASES} >= {"bert4rec", "sasrec", "gru4rec", "gru4recf"}
    assert ("bert4rec", "mlm") in CASES and ("sasrec", "clm") in CASES
    assert {v for n, v in CASES if n == "gru4recf"} == set(FUSIONS)


def test_output_shapes(case) -> None:
    model = make_model(*case)
    assert isinstance(model, SequentialRecommender)
    loss = model.calculate_loss(training_batch(model), torch.Generator().manual_seed(0))
    assert loss.shape == () and torch.isfinite(loss)
    model.eval()
    batch = history_batch()
    assert states(model, batch.item_seq).shape == (4, MAX_LEN, 16)
    if family(case[0]) == "recurrent":  # RecBole's forward: the output at the newest item
        assert model(batch.item_seq).shape == (4, 16)
    assert model.full_sort_predict(batch).shape == (4, N_ITEMS + 1)
    assert model.predict(batch, torch.randint(1, N_ITEMS + 1, (4, 7))).shape == (4, 7)


def test_left_padding_does_not_change_scores(case) -> None:
    model = make_model(*case).eval()
    history = left_padded([5, 3, 1], 5, seed=2)
    narrow = model.full_sort_predict(SequenceBatch(history))
    for width in (MAX_LEN, MAX_LEN + 3):
        padded = torch.cat([torch.zeros(3, width - 5, dtype=torch.long), history], dim=1)
        wide = model.full_sort_predict(SequenceBatch(padded))
        torch.testing.assert_close(wide[:, 1:], narrow[:, 1:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", CAUSAL_CASES, ids=[f"{n}-{o}" for n, o in CAUSAL_CASES])
def test_causal_models_cannot_see_the_future(case) -> None:
    model = make_model(*case).eval()
    seq = left_padded([MAX_LEN, 6], MAX_LEN, seed=3)
    hidden = states(model, seq)
    for column in (3, MAX_LEN - 1):
        changed = seq.clone()
        changed[:, column] = changed[:, column] % N_ITEMS + 1
        torch.testing.assert_close(states(model, changed)[:, :column], hidden[:, :column])
        assert not torch.allclose(states(model, changed)[:, column], hidden[:, column])


def test_same_seed_gives_the_same_loss_and_scores(case) -> None:
    results = []
    for _ in range(2):
        model = make_model(*case)
        torch.manual_seed(1)  # dropout
        loss = model.calculate_loss(training_batch(model), torch.Generator().manual_seed(5))
        scores = model.eval().full_sort_predict(history_batch())
        results.append((loss, scores))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


def test_save_and_load_gives_identical_scores(case, tmp_path) -> None:
    model = make_model(*case).eval()
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(dataclasses.asdict(model.config)))
    torch.manual_seed(123)  # a fresh model starts from different weights
    fresh = build_model(case[0], **json.loads((tmp_path / "config.json").read_text()))
    fresh.load_state_dict(load_file(tmp_path / "model.safetensors"))
    batch = history_batch()
    assert torch.equal(fresh.eval().full_sort_predict(batch), model.full_sort_predict(batch))


def test_loss_falls_when_overfitting_one_batch(case) -> None:
    model = make_model(*case, **NO_DROPOUT[family(case[0])])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = training_batch(model)
    losses = []
    for _ in range(40):
        loss = model.calculate_loss(batch, torch.Generator().manual_seed(0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_predict_equals_full_sort_gathered(case) -> None:
    model = make_model(*case).eval()
    batch = history_batch()
    items = torch.randint(1, N_ITEMS + 1, (4, 9), generator=torch.Generator().manual_seed(4))
    expected = model.full_sort_predict(batch).gather(1, items)
    torch.testing.assert_close(model.predict(batch, items), expected)


def test_score_factors_give_full_sort_predict_block_by_block(case) -> None:
    """Blocked evaluation and serving rely on it: the factors' blocks, laid side by side, are
    ``full_sort_predict`` (up to the BLAS's summation order for small blocks), and ``of`` picks
    each row's own codes."""
    model = make_model(*case).eval()
    batch = history_batch()
    with torch.no_grad():
        dense = model.full_sort_predict(batch)
        factors = model.score_factors(batch)
        blocks = [scores for _, scores in factors.blocks(6)]
        targets = torch.tensor([[3, 0], [7, 20], [1, 2], [0, 11]])
        own = factors.of(targets)
    assert [b.shape[1] for b in blocks] == [6, 6, 6, 3]
    torch.testing.assert_close(torch.cat(blocks, dim=1)[:, 1:], dense[:, 1:])
    assert (torch.cat(blocks, dim=1)[:, 0] == -math.inf).all()
    expected = dense.gather(1, targets).masked_fill(targets == 0, -math.inf)
    torch.testing.assert_close(own, expected)


def test_an_all_padding_row_gives_no_nan(case) -> None:
    model = make_model(*case)
    batch = training_batch(model)
    batch.item_seq[2] = 0
    loss = model.calculate_loss(batch, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    scores = model.eval().full_sort_predict(
        SequenceBatch(torch.zeros(2, MAX_LEN, dtype=torch.long))
    )
    assert torch.isfinite(scores[:, 1:]).all()


def test_training_masks_leave_a_target_in_every_nonempty_window(transformer_case) -> None:
    """Non-empty: at least one item to predict (causal LM also needs one item before it)."""
    model = make_model(*transformer_case)
    objective = model.objective
    generator = torch.Generator().manual_seed(6)
    width = model.train_seq_len
    shortest = 1 + objective.target_offset
    for seed in range(30):
        lengths = [width, width - 1, 4, 2, shortest, shortest - 1]
        seq = left_padded(lengths, width, seed=seed)
        info = objective.compute_masked_targets(seq, training=True, generator=generator)
        read = info.schema[:, : width - objective.target_offset]
        assert read[:5].any(dim=1).all() and not read[5].any()
        assert (info.targets[~info.schema] == 0).all()
        assert (info.targets[info.schema] > 0).all()


def test_a_wider_training_window_than_the_model_reads_is_an_error(case) -> None:
    model = make_model(*case)
    too_wide = left_padded([4], model.train_seq_len + 1)
    with pytest.raises(ValueError, match="train_seq_len"):
        model.calculate_loss(SequenceBatch(too_wide))


LAST_ITEM_SETTINGS = {
    "bert4rec": {"last_item_mask_prob": 1.0},
    "sasrec": {"objective_params": {"train_on_last_item_seq_only": True}},
}


def test_prediction_reads_the_column_that_last_item_training_trains(transformer_case) -> None:
    """Same column, and the same width, so also the same position embedding."""
    case = transformer_case
    model = make_model(*case, **LAST_ITEM_SETTINGS[case[0]])
    objective = model.objective
    window = training_batch(model).item_seq
    info = objective.compute_masked_targets(window, True, torch.Generator().manual_seed(0))
    read = window.shape[1] - objective.target_offset  # columns the encoder reads in training
    assert read == MAX_LEN
    trained = (window != 0).sum(dim=1) >= 1 + objective.target_offset  # rows with a target
    assert torch.equal(
        info.schema[:, :read].nonzero()[:, 1], torch.full((int(trained.sum()),), read - 1)
    )
    assert torch.equal(info.targets[:, :read][info.schema[:, :read]], window[trained, -1])
    test_ids = objective.inference_ids(history_batch().item_seq, MAX_LEN)
    assert test_ids.shape[1] - objective.target_offset == read  # prediction reads column read-1


CAUSAL_TRANSFORMERS = [case for case in CAUSAL_CASES if case in TRANSFORMER_CASES]


@pytest.mark.parametrize(
    "case", CAUSAL_TRANSFORMERS, ids=[f"{n}-{o}" for n, o in CAUSAL_TRANSFORMERS]
)
def test_last_item_causal_training_never_shows_the_label(case) -> None:
    model = make_model(*case, **LAST_ITEM_SETTINGS[case[0]]).eval()
    objective = model.objective
    window = training_batch(model).item_seq
    info = objective.compute_masked_targets(window, training=True)
    hidden, targets = objective.target_states(model.encoder, info)
    trained = (window != 0).sum(dim=1) >= 2
    assert torch.equal(targets, window[trained, -1])
    assert info.input_ids.shape[1] - objective.target_offset == window.shape[1] - 1  # not read
    relabelled = window.clone()
    relabelled[:, -1] = relabelled[:, -1] % N_ITEMS + 1
    info = objective.compute_masked_targets(relabelled, training=True)
    torch.testing.assert_close(objective.target_states(model.encoder, info)[0], hidden)


def test_evaluate_equals_scoring_with_predict_by_hand(case) -> None:
    """The evaluator's HR@5 / NDCG@5 equal those computed from ``predict`` scores by hand."""
    model = make_model(*case).eval()
    gen = np.random.default_rng(0)
    lengths = gen.integers(1, MAX_LEN + 3, 12)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    context = Sequences(offsets, gen.integers(1, N_ITEMS + 1, offsets[-1]))
    targets = Sequences(np.arange(13), gen.integers(1, N_ITEMS + 1, 12))
    eval_set = EvalSet(np.arange(12), context, targets)
    evaluator = Evaluator(eval_set, SampledRanking(5, "uniform", seed=1), N_ITEMS,
                          metrics=("HR@5", "NDCG@5"), batch_size=5)  # fmt: skip
    result = evaluator.evaluate(model)
    hits, gains = [], []
    for row in range(12):
        history = context.row(row)[-MAX_LEN:]
        item_seq = torch.zeros(1, MAX_LEN, dtype=torch.long)
        item_seq[0, MAX_LEN - len(history) :] = torch.from_numpy(history)
        candidates = torch.tensor([[targets.row(row)[0], *evaluator.negatives[row]]])
        scores = model.predict(SequenceBatch(item_seq), candidates)[0]
        rank = 1 + int((scores[1:] >= scores[0]).sum())
        hits.append(float(rank <= 5))
        gains.append(1 / math.log2(rank + 1) if rank <= 5 else 0.0)
    assert result.per_user["HR@5"].tolist() == hits
    assert result.per_user["NDCG@5"].tolist() == pytest.approx(gains)
