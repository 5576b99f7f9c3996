"""Model folders: a round trip, and one clear error per way the three files can disagree."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from seqrec.data.corpus import Vocabulary
from seqrec.errors import ModelFolderError
from seqrec.models import build_model
from seqrec.training.export import load_model_dir, save_model_dir

CONFIG = {
    "n_items": 6,
    "max_len": 4,
    "hidden_size": 8,
    "n_heads": 1,
    "n_layers": 1,
    "inner_size": 8,
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = build_model("sasrec", **CONFIG)
    items = Vocabulary(np.array([f"i{i}" for i in range(6)]), offset=1)
    return save_model_dir(tmp_path / "model", model, "sasrec", CONFIG, items)


def _json(path: Path, value) -> None:
    path.write_text(json.dumps(value))


def test_round_trip_gives_the_same_weights_and_ids(folder):
    model, items, spec = load_model_dir(folder)
    saved = load_file(folder / "weights.safetensors")
    state = model.state_dict()
    assert all(torch.equal(state[name], tensor) for name, tensor in saved.items())
    assert items.raw.tolist() == [f"i{i}" for i in range(6)] and spec["name"] == "sasrec"


def _expect(folder: Path, message: str) -> None:
    with pytest.raises(ModelFolderError, match=re.escape(message)) as error:
        load_model_dir(folder)
    assert "\n" not in str(error.value)


def test_missing_files_and_folder(folder, tmp_path):
    _expect(tmp_path / "nowhere", "nowhere: no such model folder")
    (folder / "items.json").unlink()
    _expect(folder, "is not a saved model: items.json is missing")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"name": "sasrec", ', "config.json: not valid JSON: line 1, column 20"),
        ('["sasrec"]', 'config.json: expected {"name": <model>, "config": {...}}'),
        (
            '{"name": "bert5rec", "config": {}}',
            "config.json: cannot build the model: unknown model",
        ),
        ('{"name": "sasrec", "config": {"n_items": 6, "max_len": 0}}', "SASRecConfig.max_len"),
    ],
)
def test_config_json_problems_name_the_file(folder, text, message):
    (folder / "config.json").write_text(text)
    _expect(folder, message)


def test_weights_that_do_not_fit_the_config(folder):
    spec = json.loads((folder / "config.json").read_text())
    _json(
        folder / "config.json", {**spec, "config": {**CONFIG, "hidden_size": 16, "inner_size": 16}}
    )
    _expect(folder, "weights.safetensors: tensor '")
    with pytest.raises(ModelFolderError, match=r"has shape \[\d+(, \d+)*\], but config.json"):
        load_model_dir(folder)


def test_unknown_missing_and_non_finite_tensors(folder):
    weights = folder / "weights.safetensors"
    tensors = load_file(weights)
    save_file({**tensors, "extra.weight": torch.zeros(2)}, weights)
    _expect(folder, "tensor 'extra.weight' is not a weight of this model")
    name = sorted(tensors)[-1]
    save_file({k: v for k, v in tensors.items() if k != name}, weights)
    _expect(folder, f"no tensor for '{name}'")
    broken = dict(tensors)
    broken[name] = torch.full_like(tensors[name], float("nan"))
    save_file(broken, weights)
    _expect(folder, f"tensor '{name}' holds NaN or infinite values")


@pytest.mark.parametrize("content", [b"", b"\x08\x00\x00\x00\x00\x00\x00\x00{}", b"garbage" * 10])
def test_a_corrupt_safetensors_header(folder, content):
    (folder / "weights.safetensors").write_bytes(content)
    _expect(folder, "weights.safetensors: not a valid safetensors file")


def test_truncated_weights(folder):
    path = folder / "weights.safetensors"
    path.write_bytes(path.read_bytes()[:-7])
    _expect(folder, "weights.safetensors: not a valid safetensors file")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"ids": []}, "items.json: expected a JSON list of item ids (strings)"),
        ([1, 2, 3, 4, 5, 6], "items.json: expected a JSON list of item ids (strings)"),
        (["a", "b", "c", "d", "e"], "items.json: 5 item ids, but the model has 6 items"),
        (["a", "b", "c", "d", "e", "b"], "items.json: item id 'b' appears twice (entries 2 and 6)"),
    ],
)
def test_items_json_must_match_the_model(folder, value, message):
    _json(folder / "items.json", value)
    _expect(folder, message)


def test_items_json_truncated(folder):
    path = folder / "items.json"
    path.write_text(path.read_text()[:12])
    _expect(folder, "items.json: not valid JSON")
