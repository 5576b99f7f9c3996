"""Suite files: what every entry's config becomes, and clear errors that name the bad key."""

from __future__ import annotations

import pytest
import yaml
from tiny_suite import write_suite

from seqrec.benchmark.suite import find_suite, load_suite
from seqrec.config import ConfigError


def test_each_entry_gets_the_shared_sections_the_seeds_and_its_overrides(tmp_path):
    suite = load_suite(write_suite(tmp_path))
    a, b = (suite.config_of(suite.entry(n), quick=False, run_dir=tmp_path / n)
            for n in ("tiny-a", "tiny-b"))  # fmt: skip
    assert a.data == b.data and a.data.dataset == str(tmp_path / "tiny.tsv")
    assert a.evaluation == b.evaluation and a.evaluation.protocols == ("full", "uniform10")
    assert a.training.seeds == b.training.seeds == (1, 2)
    assert (a.training.lr, b.training.lr) == (0.01, 0.001)
    assert (a.model.kwargs()["hidden_size"], b.model.kwargs()["hidden_size"]) == (16, 8)
    assert b.output.dir == str(tmp_path / "tiny-b")
    assert a.training.epochs == 2
    quick = suite.config_of(suite.entry("tiny-a"), quick=True, run_dir=tmp_path)
    assert quick.training.epochs == 1


def test_quick_blocks_apply_after_the_entry_overrides(tmp_path):
    entries = [{"name": "t", "config": str(tmp_path / "tiny.yaml"),
                "overrides": {"training.epochs": 7, "training.batch_size": 4},
                "quick": {"training.epochs": 3, "training.lr": 0.5}}]  # fmt: skip
    quick = {"training.epochs": 1, "training.batch_size": 2}
    suite = load_suite(write_suite(tmp_path, models=entries, quick=quick))
    full = suite.config_of(suite.entry("t"), quick=False, run_dir=tmp_path).training
    assert (full.epochs, full.batch_size, full.lr) == (7, 4, 0.01)
    fast = suite.config_of(suite.entry("t"), quick=True, run_dir=tmp_path).training
    assert (fast.epochs, fast.batch_size, fast.lr) == (3, 2, 0.5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "unknown key 'colour'; valid keys: description"),
        ({"seeds": [1, "two"]}, "seeds: expected a list of integers"),
        ({"metric": "NDCG@20"}, "metric 'NDCG@20' is not in evaluation.metrics"),
        ({"protocol": "popular100"}, "protocol 'popular100' is not in evaluation.protocols"),
        ({"quick": {"output.dir": "x"}}, "quick: 'output.dir' is shared by every model"),
        ({"models": []}, "models: expected a list"),
    ],
)
def test_bad_suite_keys_are_named(tmp_path, change, message):
    path = write_suite(tmp_path, **change)
    with pytest.raises(ConfigError, match=r"suite\.yaml") as error:
        load_suite(path)
    assert message in str(error.value)


def _entry_error(tmp_path, entry: dict) -> str:
    pop = {"name": "pop", "config": str(tmp_path / "pop.yaml")}
    path = write_suite(tmp_path, models=[pop, entry])
    with pytest.raises(ConfigError) as error:
        load_suite(path)
    return str(error.value)


def test_an_entry_may_not_override_the_shared_sections(tmp_path):
    entry = {"name": "t", "config": str(tmp_path / "tiny.yaml"), "overrides": {"data.max_len": 5}}
    message = _entry_error(tmp_path, entry)
    assert "models[1].overrides: 'data.max_len' is shared by every model" in message


def test_an_unregistered_model_is_an_error_naming_the_entry(tmp_path):
    (tmp_path / "x.yaml").write_text(yaml.safe_dump({"data": {}, "model": {"name": "xyz4rec"}}))
    message = _entry_error(tmp_path, {"name": "xyz", "config": str(tmp_path / "x.yaml")})
    assert "model 'xyz'" in message and "unknown model 'xyz4rec'; registered:" in message
    assert "sasrec" in message


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "t"}, "models[1]: missing key 'config'"),
        ({"name": "a/b", "config": "x.yaml"}, "models[1].name: 'a/b' is not a folder name"),
        ({"name": "pop", "config": "x.yaml"}, "models[1].name: 'pop' appears twice"),
        ({"name": "t", "config": "nowhere.yaml"}, "model 't': no such config file nowhere.yaml"),
        ({"name": "t", "config": "x.yaml", "seed": 3}, "models[1]: unknown key 'seed'"),
    ],
)
def test_bad_entries_are_named(tmp_path, entry, message):
    assert message in _entry_error(tmp_path, entry)


def test_a_bad_model_key_names_the_entry_and_the_key(tmp_path):
    entry = {"name": "t", "config": str(tmp_path / "tiny.yaml"), "overrides": {"model.hiden": 3}}
    message = _entry_error(tmp_path, entry)
    assert "model 't'" in message and "unknown config key 'model.hiden'" in message


def test_suites_are_found_by_name_in_the_checkout_or_by_path(tmp_path, monkeypatch):
    assert find_suite("ml-100k-full").name == "ml-100k-full.yaml"  # tests run from the checkout
    with pytest.raises(ConfigError, match=r"no suite named 'nope'.*known: .*ml-100k-full"):
        find_suite("nope")
    with pytest.raises(ConfigError, match="no such suite file"):
        find_suite(tmp_path / "missing.yaml")


@pytest.mark.parametrize("name", ["ml-100k-full", "beauty-full", "beauty-paper"])
def test_the_shipped_suites_load(name):
    suite = load_suite(name)
    assert suite.seeds == (1, 2, 3) and suite.metric == "NDCG@10"
    assert {"pop", "bert4rec", "sasrec-bce", "sasrec-ce", "sasrec-gbce"} <= {
        e.name for e in suite.entries
    }


def test_the_ml_100k_suite_has_every_registered_model():
    from seqrec import models

    suite = load_suite("ml-100k-full")
    used = {suite.config_of(e, False, "x").model.name for e in suite.entries}
    missing = set(models.MODELS) - used - {"tiny"}  # tiny: the test model of this folder
    assert not missing, f"registered but not in benchmarks/suites/ml-100k-full.yaml: {missing}"
