"""The model registry: names, config keys, and rebuilding a model from its JSON config."""

from __future__ import annotations

import dataclasses
import json

import pytest

from seqrec.models import MODELS, build_model


def test_unknown_model_lists_the_registered_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'bert'; valid: .*bert4rec.*sasrec"):
        build_model("bert", n_items=5)


def test_unknown_config_key_lists_the_valid_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown config key.*hidden_dim.*valid: n_items"):
        build_model("sasrec", n_items=5, hidden_dim=8)


def test_missing_required_key_is_named() -> None:
    with pytest.raises(ValueError, match=r"needs config key.*n_items"):
        build_model("bert4rec", max_len=5)


SPEC = [{"name": "genre", "kind": "token", "codes": 5, "width": 1}]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_config_round_trips_through_json(name: str) -> None:
    wanted = {
        "n_items": 7, "max_len": 4, "hidden_size": 8, "embedding_size": 8, "objective_params": {},
        "item_feature_spec": SPEC, "item_features": ["genre"],
    }  # fmt: skip
    known = {f.name for f in dataclasses.fields(MODELS[name][1])}
    model = build_model(name, **{k: v for k, v in wanted.items() if k in known})
    raw = json.loads(json.dumps(dataclasses.asdict(model.config)))
    assert build_model(name, **raw).config == model.config
    assert isinstance(model, MODELS[name][0])
