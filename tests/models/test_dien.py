"""DIEN and DIN: the model contract, the click samples, the loss terms, and their evaluation."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import Sequences, Vocabulary
from seqrec.data.features import build_feature_table
from seqrec.data.splits import EvalSet
from seqrec.evaluation.evaluator import Evaluator
from seqrec.evaluation.protocols import FullRanking, SampledRanking
from seqrec.metrics import auc
from seqrec.models import build_model
from seqrec.models.ctr_samples import CTRSamples, sample_non_clicked, uniform_excluding
from seqrec.models.pop import Pop
from seqrec.models.protocol import SequentialRecommender
from seqrec.nn.features import load_item_tables, load_user_tables
from seqrec.training.data import training_windows

N_ITEMS, MAX_LEN = 20, 8
SMALL = {
    "dien": {"embedding_size": 8, "att_hidden_size": [8, 4], "aux_hidden_size": [8],
             "mlp_hidden_size": [8], "mlp_activation": "prelu"},
    "din": {"embedding_size": 8, "att_hidden_size": [8, 4], "mlp_hidden_size": [8],
            "mlp_activation": "prelu"},
}  # fmt: skip
MODELS = sorted(SMALL)


def make(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, n_items=N_ITEMS, max_len=MAX_LEN, **(SMALL[name] | overrides))


def left_padded(lengths: list[int], width: int, seed: int = 0) -> torch.Tensor:
    """Rows of distinct random items with the given lengths, left-padded to ``width``."""
    gen = torch.Generator().manual_seed(seed)
    rows = torch.stack([torch.randperm(N_ITEMS, generator=gen)[:width] + 1 for _ in lengths])
    return rows.masked_fill(torch.arange(width) < width - torch.tensor(lengths)[:, None], 0)


def windows() -> SequenceBatch:
    return SequenceBatch(left_padded([MAX_LEN + 1, MAX_LEN + 1, 5, 2, MAX_LEN + 1], MAX_LEN + 1))


def histories() -> SequenceBatch:
    return SequenceBatch(left_padded([MAX_LEN, 5, 3, 1], MAX_LEN, seed=1))


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- the model contract


@pytest.mark.parametrize("name", MODELS)
def test_shapes_and_click_probabilities(name: str) -> None:
    model = make(name)
    assert isinstance(model, SequentialRecommender) and model.predicts_probabilities
    loss = model.calculate_loss(windows(), gen())
    assert loss.shape == () and torch.isfinite(loss)
    model.eval()
    items = torch.tensor([[3, 0, 7]] * 4)
    probs = model.predict(histories(), items)
    assert probs.shape == (4, 3) and (probs[:, [0, 2]] > 0).all() and (probs[:, [0, 2]] < 1).all()
    assert (probs[:, 1] == -math.inf).all()  # padding is no candidate
    full = model.full_sort_predict(histories())
    assert full.shape == (4, N_ITEMS + 1) and (full[:, 0] == -math.inf).all()


@pytest.mark.parametrize("name", MODELS)
def test_left_padding_does_not_change_scores(name: str) -> None:
    model = make(name).eval()
    history = left_padded([5, 3, 1], 5, seed=2)
    narrow = model.full_sort_predict(SequenceBatch(history))
    for width in (MAX_LEN, MAX_LEN + 3):
        padded = torch.cat([torch.zeros(3, width - 5, dtype=torch.long), history], dim=1)
        torch.testing.assert_close(model.full_sort_predict(SequenceBatch(padded)), narrow)


@pytest.mark.parametrize("name", MODELS)
def test_scores_follow_the_history(name: str) -> None:
    """If the attention (or the evolution it drives) were zeroed, the history would not matter."""
    model = make(name).eval()
    batch = histories()
    changed = batch.item_seq.clone()
    changed[0, -3:] = changed[0, -3:] % N_ITEMS + 1
    before = model.full_sort_predict(batch)[0]
    after = model.full_sort_predict(SequenceBatch(changed))[0]
    assert (before[1:] - after[1:]).abs().max() > 1e-4


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_gives_the_same_loss_and_scores(name: str) -> None:
    results = []
    for _ in range(2):
        model = make(name, dropout=0.1)
        torch.manual_seed(1)  # dropout
        loss = model.calculate_loss(windows(), gen(5))
        results.append((loss, model.eval().full_sort_predict(histories())))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


@pytest.mark.parametrize("name", MODELS)
def test_save_and_load_gives_identical_scores(name: str, tmp_path) -> None:
    model = make(name, mlp_activation="dice")
    model.calculate_loss(windows(), gen()).backward()  # Dice's running statistics move
    model.eval()
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(dataclasses.asdict(model.config)))
    torch.manual_seed(123)
    fresh = build_model(name, **json.loads((tmp_path / "config.json").read_text()))
    fresh.load_state_dict(load_file(tmp_path / "model.safetensors"))
    assert fresh.config == model.config
    assert torch.equal(
        fresh.eval().full_sort_predict(histories()), model.full_sort_predict(histories())
    )


@pytest.mark.parametrize("name", MODELS)
def test_loss_falls_when_overfitting_one_batch(name: str) -> None:
    model = make(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        loss = model.calculate_loss(windows(), gen())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.4 * losses[0]


@pytest.mark.parametrize("name", MODELS)
def test_predict_equals_full_sort_gathered(name: str) -> None:
    model = make(name).eval()
    items = torch.randint(1, N_ITEMS + 1, (4, 9), generator=gen(4))
    torch.testing.assert_close(
        model.predict(histories(), items), model.full_sort_predict(histories()).gather(1, items)
    )


@pytest.mark.parametrize("name", MODELS)
def test_chunked_scoring_equals_one_pass(name: str, monkeypatch) -> None:
    import seqrec.models.dien as dien
    import seqrec.models.din as din

    model = make(name).eval()
    whole = model.full_sort_predict(histories())
    monkeypatch.setattr(dien if name == "dien" else din, "MAX_SCORED_STEPS", 40)  # 1 item a pass
    torch.testing.assert_close(model.full_sort_predict(histories()), whole)


@pytest.mark.parametrize("name", MODELS)
def test_an_all_padding_row_gives_no_nan(name: str) -> None:
    model = make(name)
    batch = windows()
    batch.item_seq[2, :-1] = 0  # a window with a target but no history: not a sample
    loss = model.calculate_loss(batch, gen())
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    empty = SequenceBatch(torch.zeros(2, MAX_LEN, dtype=torch.long))
    assert torch.isfinite(model.eval().full_sort_predict(empty)[:, 1:]).all()


@pytest.mark.parametrize("name", MODELS)
def test_a_wider_window_than_train_seq_len_is_an_error(name: str) -> None:
    model = make(name)
    with pytest.raises(ValueError, match="train_seq_len"):
        model.calculate_loss(SequenceBatch(left_padded([4], MAX_LEN + 2)))


# ---------------------------------------------------------------- the loss terms


def test_dien_loss_is_bce_plus_alpha_times_the_auxiliary_loss() -> None:
    model = make("dien", alpha=0.7)
    batch = windows()
    samples, _ = CTRSamples.from_batch(batch, N_ITEMS, 1, gen(3))
    logits, aux = model(None, samples.history, samples.noclick, samples.lengths, samples.candidates)
    bce = F.binary_cross_entropy_with_logits(logits, samples.labels)
    assert aux > 0.1
    torch.testing.assert_close(model.calculate_loss(batch, gen(3)), bce + 0.7 * aux)
    no_aux = make("dien", alpha=0.0)
    torch.testing.assert_close(no_aux.calculate_loss(batch, gen(3)), bce)


def test_the_auxiliary_loss_trains_the_auxiliary_network_only_when_alpha_is_positive() -> None:
    for alpha, trained in ((1.0, True), (0.0, False)):
        model = make("dien", alpha=alpha)
        model.calculate_loss(windows(), gen()).backward()
        grads = [p.grad for p in model.interest_extractor.auxiliary_net.parameters()]
        assert (all(g is not None and g.abs().sum() > 0 for g in grads)) == trained


def test_the_final_mlp_reads_evolved_interest_target_history_sum_and_product() -> None:
    model = make("dien").eval()
    seen = []
    model.dnn.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    batch, items = histories(), torch.tensor([[3, 4]] * 4)
    model.predict(batch, items)
    inputs, d = seen[0], model.config.embedding_size  # (B, C, 4D)
    target = model.item_embedding(items)
    summed = model.item_embedding(batch.item_seq).sum(1, keepdim=True).expand_as(target)
    torch.testing.assert_close(inputs[..., d : 2 * d], target)
    torch.testing.assert_close(inputs[..., 2 * d : 3 * d], summed)
    torch.testing.assert_close(inputs[..., 3 * d :], summed * target)
    assert make("dien", history_sum=False).dnn.layers[0].in_features == 2 * d


def test_the_forward_signature_of_recbole() -> None:
    model = make("dien").eval()
    batch = histories()
    lengths = (batch.item_seq > 0).sum(1)
    targets = torch.tensor([3, 4, 5, 6])
    logits, aux = model(None, batch.item_seq, None, lengths, targets)
    assert logits.shape == (4,) and aux is None
    torch.testing.assert_close(torch.sigmoid(logits), model.predict(batch, targets[:, None])[:, 0])


# ---------------------------------------------------------------- click samples


def test_windows_give_the_newest_item_as_click_and_unseen_items_as_non_clicks() -> None:
    batch = windows()
    batch.item_seq[3, :-1] = 0  # no history: not a sample
    samples, rows = CTRSamples.from_batch(batch, N_ITEMS, 3, gen(1))
    assert rows.tolist() == [0, 1, 2, 4]
    window = batch.item_seq[rows]
    assert torch.equal(samples.candidates[:, 0], window[:, -1])
    assert torch.equal(samples.labels, torch.tensor([[1.0, 0, 0, 0]] * 4))
    assert torch.equal(samples.history, window[:, :-1])
    negatives = samples.candidates[:, 1:]
    assert not (negatives[:, :, None] == window[:, None, :]).any()
    assert ((negatives >= 1) & (negatives <= N_ITEMS)).all()
    real = samples.history > 0
    assert torch.equal(samples.lengths, real.sum(1))
    assert (samples.noclick[real] != samples.history[real]).all()
    assert (samples.noclick[~real] == 0).all() and (samples.noclick[real] > 0).all()


def test_labelled_impressions_keep_their_labels() -> None:
    model = make("dien")
    history = histories()
    batch = SequenceBatch(history.item_seq, target_item=torch.tensor([2, 3, 4, 5]),
                          label=torch.tensor([1.0, 0.0, 0.0, 1.0]))  # fmt: skip
    samples, _ = CTRSamples.from_batch(batch, N_ITEMS, 1, gen(2))
    assert torch.equal(samples.candidates, torch.tensor([[2], [3], [4], [5]]))
    assert torch.equal(samples.labels[:, 0], batch.label)
    logits, aux = model(None, samples.history, samples.noclick, samples.lengths, samples.candidates)
    expected = F.binary_cross_entropy_with_logits(logits, samples.labels) + aux
    torch.testing.assert_close(model.calculate_loss(batch, gen(2)), expected)


def test_uniform_sampling_excluding_a_set_is_exact_and_uniform() -> None:
    exclude = torch.tensor([[3, 3, 0, 7, 1], [0, 0, 0, 0, 0]])
    draws = uniform_excluding(exclude.repeat(2000, 1), 5, 8, gen(0))  # items 1..8
    first, second = draws[0::2].flatten(), draws[1::2].flatten()
    assert set(first.tolist()) == {2, 4, 5, 6, 8} and set(second.tolist()) == set(range(1, 9))
    counts = torch.bincount(first, minlength=9)[[2, 4, 5, 6, 8]].float()
    assert (counts / counts.sum() - 0.2).abs().max() < 0.02  # 10,000 draws: sd ~ 0.004
    with pytest.raises(ValueError, match="excludes every item"):
        uniform_excluding(torch.tensor([[1, 2]]), 1, 2, gen(0))


def test_popularity_sampling_follows_the_counts_and_excludes() -> None:
    weights = torch.tensor([0.0, 1, 2, 0, 5, 2])  # items 1..5
    draws = sample_non_clicked(torch.tensor([[4]] * 5000), 2, 5, gen(1), weights)
    counts = torch.bincount(draws.flatten(), minlength=6).float()
    assert counts[0] == counts[3] == counts[4] == 0  # never excluded, never weight 0
    assert (sample_non_clicked(torch.tensor([[1, 2, 4]] * 50), 3, 5, gen(2), weights) == 5).all()
    torch.testing.assert_close(counts[[1, 2, 5]] / counts.sum(), torch.tensor([0.2, 0.4, 0.4]),
                               atol=0.02, rtol=0)  # fmt: skip


def test_popular_sampler_reads_the_counts_prepared_from_training() -> None:
    model = make("dien", sampler="popular")
    with pytest.raises(ValueError, match="prepare_from_training"):
        model.calculate_loss(windows(), gen())
    train = Sequences(np.array([0, 3, 5]), np.array([1, 2, 2, 5, 2]))
    model.prepare_from_training(train)
    assert model.item_counts[:6].tolist() == [0, 1, 3, 0, 0, 1]
    assert torch.isfinite(model.calculate_loss(windows(), gen()))


def test_prefix_windows_make_every_position_a_sample() -> None:
    train = Sequences(np.array([0, 12, 14, 15]), np.arange(1, 16))
    model = make("dien")
    assert model.train_on_prefixes
    windows_, users = training_windows(train, model.train_seq_len, 1, prefixes=True)
    assert len(windows_) == 11 + 1  # one per position after the first; a 1-item user has none
    targets = sorted(zip(users.tolist(), windows_[:, -1].tolist(), strict=True))
    assert targets == [(0, i) for i in range(2, 13)] + [(1, 14)]
    for window, user in zip(windows_, users, strict=True):
        row = train.row(int(user)).tolist()  # the history: the newest max_len items before it
        end = row.index(int(window[-1]))
        assert [int(i) for i in window[:-1] if i > 0] == row[max(0, end - MAX_LEN) : end]


def test_user_embedding_uses_the_users_and_checks_them() -> None:
    model = make("dien", user_embedding=True, n_users=4).eval()
    batch = histories()
    with_users = SequenceBatch(batch.item_seq, users=torch.tensor([0, 1, 2, 3]))
    other_users = SequenceBatch(batch.item_seq, users=torch.tensor([3, 2, 1, 0]))
    assert not torch.allclose(
        model.full_sort_predict(with_users), model.full_sort_predict(other_users)
    )
    assert torch.isfinite(model.full_sort_predict(batch)[:, 1:]).all()  # no users: zero vectors
    with pytest.raises(ValueError, match=r"model\.n_users"):
        model.full_sort_predict(SequenceBatch(batch.item_seq, users=torch.tensor([0, 1, 2, 4])))


@pytest.mark.parametrize("name", MODELS)
def test_configs_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="sampler"):
        make(name, sampler="random")
    with pytest.raises(ValueError, match="att_hidden_size"):
        make(name, att_hidden_size=[8, 0])
    assert make(name, att_hidden_size=[8, 4]).config.att_hidden_size == (8, 4)


# ---------------------------------------------------------------- evaluation


def eval_set(seed: int = 0) -> EvalSet:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, MAX_LEN + 3, 12)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    context = Sequences(offsets, rng.integers(1, N_ITEMS + 1, offsets[-1]))
    targets = Sequences(np.arange(13), rng.integers(1, N_ITEMS + 1, 12))
    return EvalSet(np.arange(12), context, targets)


@pytest.mark.parametrize("name", MODELS)
def test_evaluate_equals_scoring_with_predict_by_hand(name: str) -> None:
    model = make(name).eval()
    es = eval_set()
    evaluator = Evaluator(es, SampledRanking(5, "uniform", seed=1), N_ITEMS,
                          metrics=("HR@5", "AUC", "GAUC", "LogLoss"), batch_size=5)  # fmt: skip
    result = evaluator.evaluate(model)
    all_scores, all_labels, hits = [], [], []
    for row in range(12):
        history = es.context.row(row)[-MAX_LEN:]
        item_seq = torch.zeros(1, MAX_LEN, dtype=torch.long)
        item_seq[0, MAX_LEN - len(history) :] = torch.from_numpy(history)
        candidates = torch.tensor([[es.targets.row(row)[0], *evaluator.negatives[row]]])
        scores = model.predict(SequenceBatch(item_seq, users=torch.tensor([row])), candidates)[0]
        hits.append(float(1 + int((scores[1:] >= scores[0]).sum()) <= 5))
        all_scores.append(scores)
        all_labels.append(torch.tensor([1] + [0] * 5))
    scores, labels = torch.cat(all_scores), torch.cat(all_labels)
    assert result.per_user["HR@5"].tolist() == hits
    assert result["AUC"] == pytest.approx(auc(scores, labels).item(), abs=1e-6)
    assert "AUC" not in result.per_user and result.summary["GAUC"]["skipped"] == 0
    assert result.summary["AUC"]["ci_low"] <= result["AUC"] <= result.summary["AUC"]["ci_high"]


def test_popularity_gets_auc_from_its_counts_but_no_log_loss() -> None:
    es = eval_set(1)
    pop = Pop.fit(Sequences(np.array([0, 6]), np.array([1, 1, 1, 2, 2, 3])), N_ITEMS)
    evaluator = Evaluator(es, SampledRanking(5, "uniform", seed=2), N_ITEMS, metrics=("AUC",))
    result = evaluator.evaluate(pop)
    candidates = np.concatenate([np.array(es.targets.items)[:, None], evaluator.negatives], 1)
    labels = np.zeros(candidates.shape, dtype=np.int64)
    labels[:, 0] = 1
    expected = auc(
        pop.counts[torch.from_numpy(candidates)].flatten(), torch.from_numpy(labels).flatten()
    )
    assert result["AUC"] == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="LogLoss needs click probabilities"):
        Evaluator(es, SampledRanking(5), N_ITEMS, metrics=("LogLoss",)).evaluate(pop)


def test_ctr_metrics_need_a_sampled_protocol() -> None:
    with pytest.raises(ValueError, match="need a sampled protocol"):
        Evaluator(eval_set(), FullRanking(), N_ITEMS, metrics=("NDCG@10", "AUC"))
    with pytest.raises(ValueError, match="CTR metrics: AUC, GAUC, LogLoss"):
        Evaluator(eval_set(), FullRanking(), N_ITEMS, metrics=("AUROC",))


# ---------------------------------------------------------------- through the pipeline


def test_train_evaluate_and_recommend_through_the_pipeline(tmp_path) -> None:
    """A short run: prepare_from_training is called, CTR metrics reach metrics.json, and the
    saved model recommends."""
    import sys

    from seqrec import pipeline

    sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
    from tiny_run import write_interactions

    data = write_interactions(tmp_path / "tiny.tsv", n_users=20, n_items=15, length=10)
    config = {
        "data": {"dataset": str(data)},
        "model": {"name": "dien", "max_len": 6, **SMALL["dien"], "sampler": "popular"},
        "training": {"epochs": 1, "batch_size": 16, "window_step": 1, "progress_bar": False,
                     "early_stopping_metric": "AUC"},
        "evaluation": {"protocols": ["uniform5"], "metrics": ["AUC", "GAUC", "LogLoss", "HR@5"]},
        "output": {"dir": str(tmp_path / "run")},
    }  # fmt: skip
    run = pipeline.train(config)
    assert run.model.item_counts.sum() == run.prepared().split.train.lengths.sum()
    assert run.fit.windows == int((run.prepared().split.train.lengths - 1).clip(min=0).sum())
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())["uniform5"]["metrics"]
    assert {"AUC", "GAUC", "LogLoss", "HR@5"} <= set(saved)
    assert 0.0 <= saved["AUC"]["ci_low"] <= saved["AUC"]["mean"] <= saved["AUC"]["ci_high"] <= 1
    top = pipeline.recommend(tmp_path / "run", history=["i1", "i2", "i3"], k=4)
    assert len(top) == 4 and all(0.0 < score < 1.0 for _, score in top)
    assert {"i1", "i2", "i3"}.isdisjoint(item for item, _ in top)


# ---------------------------------------------------------------- item side features


def with_genres(name: str) -> torch.nn.Module:
    """A small model whose items carry a genre token (item i has genre i % 3, item 5 none)."""
    frame = pl.DataFrame(
        {"id": [str(i) for i in range(1, N_ITEMS + 1)],
         "genre": [None if i == 5 else f"g{i % 3}" for i in range(1, N_ITEMS + 1)]}
    )  # fmt: skip
    table = build_feature_table(frame, Vocabulary(np.array(frame["id"].to_list()), offset=1))
    model = make(name, item_features=["genre"], item_feature_spec=table.spec())
    load_item_tables(model, table)
    return model.eval()


@pytest.mark.parametrize("name", MODELS)
def test_item_features_reach_the_scores_and_padding_stays_neutral(name: str) -> None:
    model = with_genres(name)
    batch, items = histories(), torch.arange(1, N_ITEMS + 1).expand(4, -1)
    before = model.predict(batch, items)
    wider = SequenceBatch(torch.cat([torch.zeros(4, 3, dtype=torch.long), batch.item_seq], 1))
    model.max_len = MAX_LEN + 3  # the same histories with three more padding columns
    torch.testing.assert_close(model.predict(wider, items), before)
    model.max_len = MAX_LEN
    with torch.no_grad():  # item 2 (genre g2) takes item 3's genre (g0)
        model.item_features.codes[2] = model.item_features.codes[3]
    after = model.predict(batch, items)
    assert not torch.allclose(after[:, 1], before[:, 1])  # item 2 scores differently
    histories_without_2 = (batch.item_seq != 2).all(1)
    torch.testing.assert_close(
        after[histories_without_2][:, 2:], before[histories_without_2][:, 2:]
    )


# ---------------------------------------------------------------- user side features

GENDERS = ["f", "m", "f", None]  # users 0..3; user 3 has no gender


def with_gender(name: str, **overrides) -> torch.nn.Module:
    """A small model whose four users carry a gender token (users 0 and 2 the same one)."""
    frame = pl.DataFrame({"id": ["u0", "u1", "u2", "u3"], "gender": GENDERS})
    table = build_feature_table(frame, Vocabulary(np.array(frame["id"].to_list()), offset=0))
    model = make(
        name, n_users=4, user_features=["gender"], user_feature_spec=table.spec(), **overrides
    )
    load_user_tables(model, table)
    return model.eval()


@pytest.mark.parametrize("name", MODELS)
def test_user_features_reach_the_scores_of_their_user_only(name: str) -> None:
    model = with_gender(name)
    history = histories().item_seq[:1].expand(4, -1)  # one history for every user
    items = torch.arange(1, N_ITEMS + 1).expand(4, -1)
    users = torch.arange(4)
    before = model.predict(SequenceBatch(history, users=users), items)
    torch.testing.assert_close(before[0], before[2])  # same gender, same scores
    assert not torch.allclose(before[0], before[1])  # the gender moves the scores
    anonymous = model.predict(SequenceBatch(history), items)  # no user codes: a zero vector
    assert not torch.allclose(anonymous[0], before[0])
    with torch.no_grad():  # user 1 (row 2 of the user table) takes user 0's gender
        model.user_features.codes[2] = model.user_features.codes[1]
    after = model.predict(SequenceBatch(history, users=users), items)
    torch.testing.assert_close(after[1], before[0])
    torch.testing.assert_close(after[[0, 2, 3]], before[[0, 2, 3]])
    with pytest.raises(ValueError, match=r"user codes must lie in 0\.\.3"):
        model.predict(SequenceBatch(history[:1], users=torch.tensor([4])), items[:1])


@pytest.mark.parametrize("name", MODELS)
def test_user_features_join_the_user_embedding(name: str) -> None:
    model = with_gender(name, user_embedding=True)
    users = torch.tensor([2, 0])
    vectors = model.user_representation(users, 2)
    expected = torch.cat(
        [model.user_embedding(users), model.user_features((users + 1).unsqueeze(1)).squeeze(1)],
        -1,
    )
    torch.testing.assert_close(vectors, expected)
    assert vectors.shape == (2, 2 * SMALL[name]["embedding_size"])
    assert not model.user_representation(None, 3).any()


def test_user_features_need_users_and_known_fields() -> None:
    with pytest.raises(ValueError, match=r"DIENConfig\.user_features"):
        make("dien", user_features=["gender"])  # n_users 0
    with pytest.raises(ValueError, match=r"no user feature 'age'; the data has: gender"):
        spec = [{"name": "gender", "kind": "token", "codes": 4, "width": 1}]
        make("din", n_users=4, user_features=["age"], user_feature_spec=spec)
