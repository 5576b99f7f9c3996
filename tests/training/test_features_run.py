"""Side features through the pipeline: loading, the report, and models that carry their tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from seqrec.config import ConfigError, DataConfig, FeatureConfig
from seqrec.data.corpus import Vocabulary, build_corpus
from seqrec.pipeline import load_run, recommend, train
from seqrec.training.prepare import load_features, prepare_data, read_frame

ML100K = Path("/work/shared/data/ml-100k/ml-100k.inter")


def write_atomic(folder: Path, n_users: int = 24, n_items: int = 30, length: int = 10) -> Path:
    """``shop.inter`` and ``shop.item`` (genre token_seq, year token; item 7 has no year)."""
    rng = np.random.default_rng(0)
    rows = ["user_id:token\titem_id:token\ttimestamp:float"]
    for u in range(n_users):
        start = rng.integers(n_items)
        rows += [f"u{u}\ti{(start + t) % n_items}\t{100 * u + t}" for t in range(length)]
    (folder / "shop.inter").write_text("\n".join(rows) + "\n")
    items = ["item_id:token\tgenre:token_seq\tyear:token"]
    items += [f"i{i}\tg{i % 3} g{i % 5}\t{'' if i == 7 else 2000 + i % 4}" for i in range(n_items)]
    items.append("ghost\tg1\t2001")  # not in the interactions
    (folder / "shop.item").write_text("\n".join(items) + "\n")
    return folder / "shop.inter"


def run_config(data: Path, out: Path, model: dict) -> dict:
    return {
        "data": {"dataset": str(data)},
        "model": {"max_len": 6, "embedding_size": 8, "hidden_size": 8, **model},
        "training": {"epochs": 2, "batch_size": 8, "lr": 0.01, "progress_bar": False},
        "evaluation": {"protocols": ["full"], "metrics": ["NDCG@10"]},
        "output": {"dir": str(out)},
    }


def test_the_item_file_beside_an_inter_file_is_loaded_and_counted(tmp_path):
    data = prepare_data(DataConfig(dataset=str(write_atomic(tmp_path))))
    table = data.item_features
    assert table is not None and set(table.kinds) == {"genre", "year"}
    assert table.unknown_ids == ("ghost",) and table.missing == {"genre": 0, "year": 1}
    assert data.user_features is None  # no shop.user


def test_fields_sources_and_their_errors(tmp_path):
    inter = write_atomic(tmp_path)
    chosen = DataConfig(dataset=str(inter), item_features=FeatureConfig(fields=("year",)))
    assert list(prepare_data(chosen).item_features.kinds) == ["year"]
    wrong = DataConfig(dataset=str(inter), item_features=FeatureConfig(fields=("class",)))
    with pytest.raises(ConfigError, match=r"item_features.fields: no field 'class' .*genre, year"):
        prepare_data(wrong)
    side = tmp_path / "side.csv"
    side.write_text("sku,price\ni1,2.5\ni2,x\n")
    bad = FeatureConfig(path=str(side), id_column="sku", kinds={"price": "float"})
    with pytest.raises(ValueError, match=r"side.csv: line 3: field 'price' has 'x'"):
        prepare_data(DataConfig(dataset=str(inter), item_features=bad))
    beauty = DataConfig(dataset="beauty", item_features=FeatureConfig(fields=("brand",)))
    with pytest.raises(ConfigError, match=r"beauty has no item features; give data\.item_"):
        load_features(beauty, "item", pl.DataFrame(), Vocabulary(np.array([]), offset=1))


def test_extra_columns_of_a_csv_file_become_features(tmp_path):
    csv = tmp_path / "clicks.csv"
    rows = ["user_id,item_id,timestamp,shop"]
    rows += [f"u{u},i{(u + t) % 6},{t},s{(u + t) % 6 % 2}" for u in range(4) for t in range(5)]
    csv.write_text("\n".join(rows) + "\n")
    data = DataConfig(dataset=str(csv), item_features=FeatureConfig(fields=("shop",)))
    prepared = prepare_data(data)
    table = prepared.item_features
    assert table.kinds == {"shop": "token"} and table.missing == {"shop": 0}
    assert "from the interaction file's columns shop" in table.describe()
    codes = table.arrays["shop"][prepared.corpus.items.encode(["i2", "i3"])]
    assert table.vocabularies["shop"].decode(codes).tolist() == ["s0", "s1"]
    assert prepare_data(DataConfig(dataset=str(csv))).item_features is None  # not unless named


@pytest.mark.skipif(not ML100K.is_file(), reason="shared ml-100k not present")
def test_ml100k_genres_and_year_work_out_of_the_box():
    data = DataConfig(
        dataset=str(ML100K), item_features=FeatureConfig(fields=("class", "release_year"))
    )
    frame = read_frame(data)
    table = load_features(data, "item", frame, build_corpus(frame).items)
    spec = {e["name"]: e for e in table.spec()}
    assert spec["class"]["kind"] == "token_seq" and spec["class"]["codes"] == 19 + 2
    assert spec["release_year"]["kind"] == "token"


@pytest.fixture(scope="module")
def feature_run(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("features")
    data = write_atomic(root)
    config = run_config(
        data,
        root / "run",
        {
            "name": "gru4recf",
            "fusion": "input_concat",
            "feature_size": 4,
            "item_features": ["genre", "year"],
        },
    )
    torch.set_num_threads(1)
    return root, train(config)


def test_the_report_lists_the_feature_fields_and_their_counts(feature_run):
    _, run = feature_run
    report = run.report.read_text()
    assert "| field | kind | width | tokens | missing | unknown |" in report
    assert "| year | token | 1 | 4 | 1 | 0 |" in report
    assert "1 ids of the feature file are not in the corpus (ignored)" in report
    saved = json.loads((run.dir / "model" / "config.json").read_text())["config"]
    assert [e["name"] for e in saved["item_feature_spec"]] == ["genre", "year"]


def test_a_run_recommends_without_its_data_files(feature_run, tmp_path):
    root, run = feature_run
    history = ["i3", "i4", "i5"]
    expected = recommend(run, history, k=5)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("shop.inter", "shop.item"):
        (root / name).rename(moved / name)
    try:
        loaded = load_run(run.dir)
        assert recommend(loaded, history, k=5) == expected
        assert torch.equal(loaded.model.features.codes, run.model.features.codes)
    finally:
        for name in ("shop.inter", "shop.item"):
            (moved / name).rename(root / name)


@pytest.mark.parametrize("architecture", ["original", "recbole"])
def test_transformers_take_the_feature_layer_too(tmp_path, architecture):
    data = write_atomic(tmp_path)
    config = run_config(data, tmp_path / "run", {"name": "sasrec", "item_features": ["genre"]})
    del config["model"]["embedding_size"]
    config["model"] |= {"n_heads": 2, "inner_size": 16, "loss": "ce", "architecture": architecture}
    run = train(config)
    encoder = run.model.encoder
    features = encoder.features
    assert features is not None and features.codes.any()
    items = torch.tensor([[1, 2, 3]])
    scale = encoder.scale if architecture == "original" else 1.0  # Kang's sqrt(d) on the ids
    expected = encoder.item_embedding(items) * scale + features(items)
    torch.testing.assert_close(encoder.embed(items), expected)


@pytest.mark.parametrize("name", ["din", "dien"])
def test_click_through_models_concatenate_item_features_to_their_ids(tmp_path, name):
    data = write_atomic(tmp_path)
    model = {"name": name, "item_features": ["genre", "year"], "att_hidden_size": [8],
             "mlp_hidden_size": [8]}  # fmt: skip
    config = run_config(data, tmp_path / "run", model)
    del config["model"]["hidden_size"]
    config["evaluation"] = {"protocols": ["uniform10"], "metrics": ["AUC", "NDCG@10"]}
    config["training"]["early_stopping_metric"] = "AUC"
    run = train(config)
    features = run.model.item_features
    assert features is not None and features.codes.any()
    items = torch.tensor([[0, 1, 2, 3]])
    expected = torch.cat([run.model.item_embedding(items), features(items)], -1)
    torch.testing.assert_close(run.model.item_representation(items), expected)
    assert not run.model.item_representation(items)[0, 0].any()  # padding stays zero
    loaded = load_run(run.dir)  # the tables travel with the saved model
    assert torch.equal(loaded.model.item_features.codes, features.codes)
    assert recommend(loaded, ["i3", "i4", "i5"], k=5) == recommend(run, ["i3", "i4", "i5"], k=5)


def test_the_feature_spec_is_not_a_user_setting(tmp_path):
    config = run_config(write_atomic(tmp_path), tmp_path / "run", {"name": "gru4recf"})
    config["model"]["item_feature_spec"] = []
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.item_feature_spec'"):
        train(config)


def test_training_fills_the_negative_sampler_with_training_counts(tmp_path):
    data = write_atomic(tmp_path)
    model = {"name": "gru4rec", "loss": "bpr-max", "n_sample": 16}
    config = run_config(data, tmp_path / "run", model)
    config["training"]["epochs"] = 1
    run = train(config)
    train_items = run.prepared().split.train.items
    counts = np.bincount(train_items, minlength=run.model.n_items + 1)
    assert run.model.output.counts.tolist() == counts.astype(float).tolist()
    assert counts[1:].min() != counts[1:].max()  # not the uniform counts of an unprepared model


def write_users(folder: Path, n_users: int = 24) -> dict[str, tuple[str, float]]:
    """``shop.user`` beside ``shop.inter``: a gender token and an age per user (u5 has no row)."""
    people = {f"u{u}": ("fm"[u % 2], 20.0 + u) for u in range(n_users) if u != 5}
    rows = ["user_id:token\tgender:token\tage:float"]
    rows += [f"{user}\t{gender}\t{age}" for user, (gender, age) in people.items()]
    (folder / "shop.user").write_text("\n".join(rows) + "\n")
    return people


@pytest.mark.parametrize("name", ["din", "dien"])
def test_click_through_models_take_the_users_features(tmp_path, name):
    data, people = write_atomic(tmp_path), write_users(tmp_path)
    model = {"name": name, "user_features": ["gender", "age"], "att_hidden_size": [8],
             "mlp_hidden_size": [8]}  # fmt: skip
    config = run_config(data, tmp_path / "run", model)
    del config["model"]["hidden_size"]
    config["evaluation"] = {"protocols": ["uniform10"], "metrics": ["AUC"]}
    config["training"]["early_stopping_metric"] = "AUC"
    run = train(config)
    features = run.model.user_features
    users = run.prepared().corpus.users.raw.tolist()
    genders = features.codes[1:, 0].tolist()  # row u + 1 holds user u
    ages = features.values[1:, 0].tolist()  # standardised
    for user, gender, age in zip(users, genders, ages, strict=True):
        same = [u for u in people if people[u][0] == people.get(user, ("?",))[0]]
        assert (gender == 0) == (user == "u5")  # the user without a row has no gender
        assert all(genders[users.index(u)] == gender for u in same)
        if user != "u5":  # ages keep their order after standardising
            older = [u for u in people if people[u][1] > people[user][1]]
            assert all(ages[users.index(u)] > age for u in older)
    assert not features.codes[0].any()  # row 0: no user
    loaded = load_run(run.dir)  # the tables travel with the saved model
    assert torch.equal(loaded.model.user_features.codes, features.codes)
    assert torch.equal(loaded.model.user_features.values, features.values)
    config["model"]["user_features"] = ["height"]
    config["output"]["dir"] = str(tmp_path / "run2")
    with pytest.raises(ConfigError, match=r"no user feature 'height'; the data has: gender, age"):
        train(config)
