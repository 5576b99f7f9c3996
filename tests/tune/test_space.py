"""Search-space files: the shipped defaults fit the presets, and bad keys are named."""

from __future__ import annotations

import optuna
import pytest
import yaml

from seqrec.benchmark.runner import flatten
from seqrec.config import ConfigError, config_to_dict, load_config
from seqrec.tune.space import default_space_path, load_space
from seqrec.tune.study import _check_space


@pytest.mark.parametrize(
    "preset", ["sasrec-ml-100k", "bert4rec-ml-100k", "sasrec-beauty", "bert4rec-beauty"]
)
def test_default_spaces_contain_the_presets_own_values(preset):
    config = load_config(f"configs/{preset}.yaml")
    space = load_space(default_space_path(config.model.name))
    _check_space(config, space)  # every key exists in the config
    values = flatten(config_to_dict(config))
    outside = [p.key for p in space.params if not p.contains(values[p.key])]
    # trial 0 of a search is then exactly the preset
    assert not outside, outside


def _space(tmp_path, spec: dict):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"data.max_len": {"type": "int", "low": 5, "high": 9}}, "only model.* and training.*"),
        ({"evaluation.protocols": {"type": "categorical", "choices": [["full"]]}}, "only model"),
        ({"training.seed": {"type": "int", "low": 1, "high": 9}}, "training.seed is fixed"),
        ({"training.lr": {"type": "uniform", "low": 0, "high": 1}}, "expected {type: float"),
        ({"training.lr": {"type": "float", "low": 0.1, "high": 0.01}}, "low (0.1) must be below"),
        ({"training.lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "log scale needs"),
        ({"training.lr": {"type": "float", "low": "a", "high": 1}}, "low: expected a number"),
        (
            {"training.lr": {"type": "float", "low": 0, "high": 1, "choices": [1]}},
            "unknown key 'choices' for type float",
        ),
        ({"model.n_layers": {"type": "int", "low": 1.5, "high": 3}}, "expected an integer"),
        ({"model.n_layers": {"type": "categorical", "choices": []}}, "non-empty list"),
    ],
)
def test_bad_space_entries_name_the_file_and_key(tmp_path, spec, message):
    with pytest.raises(ConfigError, match=r"space\.yaml") as error:
        load_space(_space(tmp_path, spec))
    assert message in str(error.value)


def test_a_key_the_config_does_not_have_is_an_error(tmp_path):
    space = load_space(_space(tmp_path, {"model.hiden_size": {"type": "int", "low": 8, "high": 9}}))
    with pytest.raises(ConfigError, match=r"space\.yaml: unknown config key 'model\.hiden_size'"):
        _check_space(load_config("configs/sasrec-ml-100k.yaml"), space)


def test_no_default_space_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"no default search space for model 'pop'.*--space"):
        default_space_path("pop")


def test_trials_sample_each_key_from_its_distribution(tmp_path):
    spec = {
        "training.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "model.n_layers": {"type": "int", "low": 1, "high": 3},
        "training.window_step": {"type": "categorical", "choices": [10, None]},
    }
    space = load_space(_space(tmp_path, spec))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        values = space.suggest(trial)
        assert 1e-4 <= values["training.lr"] <= 1e-2
        assert values["model.n_layers"] in (1, 2, 3) and type(values["model.n_layers"]) is int
        assert values["training.window_step"] in (10, None)
    assert trial.distributions["training.lr"] == optuna.distributions.FloatDistribution(
        1e-4, 1e-2, log=True
    )
    assert trial.distributions["model.n_layers"] == optuna.distributions.IntDistribution(1, 3)


def test_contains_says_whether_a_preset_value_is_a_point_of_the_space(tmp_path):
    spec = {
        "training.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
        "model.n_layers": {"type": "int", "low": 1, "high": 3},
        "training.window_step": {"type": "categorical", "choices": [10, None]},
    }
    params = {p.key: p for p in load_space(_space(tmp_path, spec)).params}
    lr, layers, step = (params[k] for k in spec)
    assert lr.contains(0.01) and not lr.contains(0.5) and not lr.contains("0.01")
    assert layers.contains(2) and not layers.contains(2.5) and not layers.contains(4)
    assert step.contains(None) and step.contains(10) and not step.contains(25)
