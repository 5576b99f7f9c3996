"""Saved models: safetensors weights, a JSON config and the raw-id item vocabulary.

A model folder holds ``weights.safetensors``, ``config.json`` (``{"name": ..., "config": {...}}``,
the arguments of ``build_model``) and ``items.json`` (raw item ids; entry ``i`` is code ``i + 1``).
Loading reads JSON and tensors only: nothing is ever unpickled.

Loading checks that the three files fit together before any weight is used: the JSON parses and
has the expected shape, the model builds from ``config.json``, the safetensors header is valid and
every tensor's name and shape is the built model's, the weights are finite, and ``items.json`` is
a list of unique ids, one per item of the model. Each failure is one ``ModelFolderError`` line
naming the file and what does not match.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from seqrec import models
from seqrec.data.corpus import Vocabulary
from seqrec.errors import ModelFolderError, first_line

WEIGHTS, CONFIG, ITEMS = "weights.safetensors", "config.json", "items.json"


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_model_dir(
    folder: str | Path, model: nn.Module, name: str, config: dict[str, Any], items: Vocabulary
) -> Path:
    """Write a model folder; ``build_model(name, **config)`` must rebuild the model."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS + ".tmp")
    save_model(model, str(tmp))  # handles tied weights (e.g. shared item embeddings)
    os.replace(tmp, folder / WEIGHTS)
    _write_text(folder / CONFIG, json.dumps({"name": name, "config": config}, indent=2) + "\n")
    _write_text(folder / ITEMS, json.dumps([str(r) for r in items.raw]) + "\n")
    return folder


def read_json(path: Path) -> Any:
    """A JSON file's value; unreadable or invalid JSON is a ``ModelFolderError`` naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ModelFolderError(f"{path}: not UTF-8 text (byte {error.start})") from error
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise ModelFolderError(f"{path}: not valid JSON: {where}: {error.msg}") from error


def _build(folder: Path) -> tuple[nn.Module, dict[str, Any]]:
    path = folder / CONFIG
    spec = read_json(path)
    if not (
        isinstance(spec, dict) and isinstance(spec.get("name"), str)
        and isinstance(spec.get("config"), dict)
    ):  # fmt: skip
        raise ModelFolderError(f'{path}: expected {{"name": <model>, "config": {{...}}}}')
    try:
        model = models.build_model(spec["name"], **spec["config"])
    except (ValueError, TypeError, RuntimeError) as error:  # the model's own argument checks
        raise ModelFolderError(f"{path}: cannot build the model: {first_line(error)}") from error
    return model, spec


def _check_weights(path: Path, model: nn.Module) -> None:
    """The safetensors header against the model: every name known, every shape equal."""
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    try:
        with safe_open(str(path), framework="pt") as handle:
            shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}  # noqa: SIM118
    except SafetensorError as error:
        raise ModelFolderError(f"{path}: not a valid safetensors file: {error}") from error
    for name, shape in shapes.items():
        if name not in expected:
            raise ModelFolderError(f"{path}: tensor '{name}' is not a weight of this model")
        if shape != expected[name]:
            raise ModelFolderError(
                f"{path}: tensor '{name}' has shape {list(shape)}, but config.json gives a model "
                f"whose '{name}' is {list(expected[name])}"
            )


def _load_weights(path: Path, model: nn.Module) -> None:
    _check_weights(path, model)
    missing, unexpected = load_model(model, str(path), strict=False, device="cpu")
    if missing or unexpected:  # shared tensors are stored once and count as present
        names = sorted(missing) or sorted(unexpected)
        raise ModelFolderError(f"{path}: no tensor for '{names[0]}' ({len(names)} missing)")
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelFolderError(f"{path}: tensor '{name}' holds NaN or infinite values")


def _vocabulary(path: Path, n_items: int | None) -> Vocabulary:
    raw = read_json(path)
    if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
        raise ModelFolderError(f"{path}: expected a JSON list of item ids (strings)")
    if n_items is not None and len(raw) != n_items:
        raise ModelFolderError(
            f"{path}: {len(raw):,} item ids, but the model has {n_items:,} items (config.json)"
        )
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        if item in seen:
            raise ModelFolderError(
                f"{path}: item id {item!r} appears twice (entries {seen[item] + 1} and {index + 1})"
            )
        seen[item] = index
    return Vocabulary(np.array(raw, dtype=str), offset=1)


def load_model_dir(folder: str | Path) -> tuple[nn.Module, Vocabulary, dict[str, Any]]:
    """(model in eval mode on CPU, item vocabulary, ``{"name", "config"}``) from a model folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: no such model folder")
    for part in (WEIGHTS, CONFIG, ITEMS):
        if not (folder / part).is_file():
            raise ModelFolderError(f"{folder} is not a saved model: {part} is missing")
    model, spec = _build(folder)
    _load_weights(folder / WEIGHTS, model)
    items = _vocabulary(folder / ITEMS, getattr(model, "n_items", None))
    model.eval()
    return model, items, spec
