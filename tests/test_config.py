"""The typed config: YAML round trip, unknown keys, type checks and dotted overrides."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from seqrec.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_from_dict,
    load_config,
    parse_override,
    save_config,
)


@dataclass(frozen=True)
class DemoConfig:
    n_items: int
    max_len: int = 50
    hidden_size: int = 64
    dropout: float = 0.1
    activation: str = "gelu"


@pytest.fixture(autouse=True)
def demo_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import seqrec.models as models

    monkeypatch.setitem(models.MODELS, "demo", (object, DemoConfig))


def _raw(**sections: dict) -> dict:
    raw = {
        "data": {"dataset": "ml-100k", "min_user_interactions": 5},
        "model": {"name": "demo", "hidden_size": 32},
        "training": {"epochs": 3, "lr": 0.002},
        "evaluation": {"protocols": ["full", "popular100"]},
    }
    raw.update(sections)
    return raw


def test_defaults_are_filled_in_and_the_model_resolved():
    config = config_from_dict(_raw())
    assert config.training.epochs == 3 and config.training.batch_size == 128
    assert config.evaluation.protocols == ("full", "popular100")
    assert config.model.kwargs() == {
        "max_len": 50,
        "hidden_size": 32,
        "dropout": 0.1,
        "activation": "gelu",
    }  # fmt: skip  n_items comes from the data
    assert config.data.split.kind == "leave_one_out"


def test_round_trip_through_yaml(tmp_path: Path):
    raw = _raw(data={
        "dataset": "x.csv", "format": "csv", "columns": {"user": "uid", "rating": "stars"},
        "split": {"kind": "temporal", "test_quantile": 0.9, "valid_quantile": 0.8,
                  "targets": "all"},
    })  # fmt: skip
    config = config_from_dict(raw)
    again = load_config(save_config(config, tmp_path / "config.yaml"))
    assert again == config
    assert isinstance(again, Config)
    assert again.data.columns.mapping() == {"user": "uid", "rating": "stars"}


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (_raw(trainer={}), "'trainer'"),
        (_raw(training={"lrr": 0.1}), "'training.lrr'"),
        (_raw(data={"dataset": "x", "split": {"knd": "temporal"}}), "'data.split.knd'"),
        (_raw(model={"name": "demo", "hiden_size": 8}), "'model.hiden_size'"),
    ],
)
def test_unknown_keys_name_the_key_and_the_valid_ones(raw, key):
    with pytest.raises(ConfigError, match=re.escape(f"unknown config key {key}")) as error:
        config_from_dict(raw)
    assert "valid keys:" in str(error.value)


def test_model_key_error_lists_that_models_fields():
    with pytest.raises(ConfigError) as error:
        config_from_dict(_raw(model={"name": "demo", "hiden_size": 8}))
    assert "name, max_len, hidden_size, dropout, activation" in str(error.value)
    assert "n_items" not in str(error.value)


def test_unknown_model_name_is_an_error():
    with pytest.raises(
        ConfigError, match=re.escape("model.name: unknown model 'bert5rec'")
    ) as error:
        config_from_dict(_raw(model={"name": "bert5rec"}))
    assert "demo" in str(error.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_raw(training={"epochs": "ten"}), "training.epochs: expected int, got 'ten'"),
        (_raw(training={"epochs": 0}), "training.epochs: expected an integer >= 1, got 0"),
        (_raw(model={"name": "demo", "dropout": "high"}), "model.dropout: expected float"),
        (_raw(evaluation={"protocols": "full"}), "evaluation.protocols: expected a list of str"),
        (_raw(data={"dataset": "x", "split": {"kind": "random"}}), "data.split.kind: expected"),
        (_raw(data={"dataset": "x", "split": {"kind": "temporal"}}), "exactly one of"),
        ({"model": {"name": "demo"}}, "missing config key 'data'"),
    ],
)
def test_bad_values_are_errors_naming_the_key(raw, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict(raw)


def test_ints_are_accepted_for_floats_but_bools_are_not_ints():
    assert config_from_dict(_raw(training={"lr": 1})).training.lr == 1.0
    with pytest.raises(ConfigError, match=re.escape("training.epochs")):
        config_from_dict(_raw(training={"epochs": True}))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("training.lr=1e-3", ("training.lr", 0.001)),
        ("training.lr=0.5", ("training.lr", 0.5)),
        ("training.epochs=7", ("training.epochs", 7)),
        ("training.clip_grad_norm=null", ("training.clip_grad_norm", None)),
        (
            "evaluation.protocols=[full, uniform100]",
            ("evaluation.protocols", ["full", "uniform100"]),
        ),
        ("data.dataset=my file.csv", ("data.dataset", "my file.csv")),
        ("evaluation.exclude_history=false", ("evaluation.exclude_history", False)),
    ],
)
def test_override_values_parse_as_yaml_scalars(text, expected):
    assert parse_override(text) == expected


def test_overrides_reach_nested_sections_and_the_model(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_raw()))
    config = load_config(path, ["model.hidden_size=16", "data.split.kind=temporal",
                                "data.split.test_time=1000", "training.lr=1e-4"])  # fmt: skip
    assert config.model.kwargs()["hidden_size"] == 16
    assert config.data.split.test_time == 1000.0
    assert config.training.lr == 0.0001
    with pytest.raises(
        ConfigError, match=re.escape(f"{path}: unknown config key 'training.sedes'")
    ):
        load_config(path, ["training.sedes=3"])


def test_bad_override_syntax_and_overriding_a_value_with_a_section():
    with pytest.raises(ConfigError, match=re.escape("expected key.path=value")):
        parse_override("training.lr")
    with pytest.raises(ConfigError, match=re.escape("'lr' is a value, not a section")):
        apply_overrides(_raw(), [("training.lr.x", 1)])


def test_config_is_immutable():
    config = config_from_dict(_raw())
    with pytest.raises(AttributeError):
        config.training.lr = 1.0  # type: ignore[misc]


# ---------------------------------------------------------------- ranges, YAML 1.2, duplicates


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("training", "lr", -0.001, "training.lr: expected a number > 0, got -0.001"),
        ("training", "lr", 0, "training.lr: expected a number > 0, got 0.0"),
        ("training", "warmup_steps", -1, "training.warmup_steps: expected an integer >= 0"),
        (
            "training",
            "clip_grad_norm",
            -1.0,
            "training.clip_grad_norm: expected a number > 0, or null",
        ),
        ("training", "weight_decay", -0.1, "training.weight_decay: expected a number >= 0"),
        ("training", "seed", -1, "training.seed: expected an integer >= 0 and <= 4294967295"),
        ("training", "num_workers", -2, "training.num_workers: expected an integer >= 0"),
        ("training", "accelerator", "tpu", "training.accelerator: expected 'auto' | 'cpu'"),
        ("training", "devices", 0, "training.devices: expected an integer >= 1, got 0"),
        ("training", "devices", "all", "training.devices: expected int or 'auto', got 'all'"),
        ("training", "num_nodes", 0, "training.num_nodes: expected an integer >= 1, got 0"),
        ("training", "strategy", "fsdp", "training.strategy: expected 'auto' | 'ddp', got"),
        ("evaluation", "batch_size", 0, "evaluation.batch_size: expected an integer >= 1, got 0"),
        ("evaluation", "metrics", [], "evaluation.metrics: give at least one"),
        ("data", "max_len", 0, "data.max_len: expected an integer >= 1, or null, got 0"),
        (
            "data",
            "min_user_interactions",
            -3,
            "data.min_user_interactions: expected an integer >= 0",
        ),
        ("data", "duplicates", "ignore", "data.duplicates: expected 'keep' | 'drop' | 'error'"),
        ("data", "min_rating", float("nan"), "data.min_rating: expected a finite number, got nan"),
    ],
)
def test_numeric_fields_are_range_checked_with_the_key_path(section, key, value, message):
    raw = _raw()
    raw[section] = {**raw.get(section, {}), key: value}
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict(raw)


def test_range_checks_reach_model_fields_that_declare_one(monkeypatch):
    from dataclasses import field

    import seqrec.models as models
    from seqrec.config import above

    @dataclass(frozen=True)
    class Ranged:
        n_items: int
        temperature: float = field(default=1.0, metadata=above(0))

    monkeypatch.setitem(models.MODELS, "ranged", (object, Ranged))
    with pytest.raises(ConfigError, match=re.escape("model.temperature: expected a number > 0")):
        config_from_dict(_raw(model={"name": "ranged", "temperature": -1}))


def test_temporal_cut_offs_must_be_in_order():
    split = {"kind": "temporal", "test_quantile": 0.8, "valid_quantile": 0.9}
    with pytest.raises(ConfigError, match=re.escape("data.split.valid_quantile: 0.9 is after")):
        config_from_dict(_raw(data={"dataset": "x", "split": split}))


def test_yaml_files_read_numbers_as_yaml_1_2_like_overrides(tmp_path: Path):
    path = tmp_path / "c.yaml"
    text = yaml.safe_dump(_raw()).replace("lr: 0.002", "lr: 1e-3")
    path.write_text(text + "")
    assert "lr: 1e-3" in path.read_text()
    assert load_config(path).training.lr == 0.001
    assert load_config(path, ["training.lr=2e-3"]).training.lr == 0.002
    path.write_text(text.replace("epochs: 3", "epochs: 012"))
    assert load_config(path).training.epochs == 12  # YAML 1.1 would read octal 10


def test_yes_is_text_not_a_bool(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_raw(training={"progress_bar": True})).replace("true", "yes"))
    with pytest.raises(
        ConfigError, match=re.escape("training.progress_bar: expected bool, got 'yes'")
    ):
        load_config(path)


def test_a_key_given_twice_is_an_error_naming_the_line(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {dataset: x}\nmodel: {name: demo}\ntraining:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}: not valid YAML: line 5")
    assert "key 'lr' appears twice (first on line 4)" in message and "\n" not in message


def test_invalid_yaml_is_one_line_naming_the_file(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("data: [unclosed\nmodel: {name: demo}\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: not valid YAML: line")) as error:
        load_config(path)
    assert "\n" not in str(error.value)


def test_strings_that_look_like_numbers_round_trip(tmp_path: Path):
    config = config_from_dict(_raw(data={"dataset": "1e3"}))
    assert load_config(save_config(config, tmp_path / "c.yaml")).data.dataset == "1e3"
