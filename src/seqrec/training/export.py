"""Saved models: safetensors weights, a JSON config and the raw-id item vocabulary.

A model folder holds ``weights.safetensors``, ``config.json`` (``{"name": ..., "config": {...}}``,
the arguments of ``build_model``) and ``items.json`` (raw item ids; entry ``i`` is code ``i + 1``).
Loading reads JSON and tensors only: nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_model, save_model
from torch import nn

from seqrec import models
from seqrec.data.corpus import Vocabulary

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


def load_model_dir(folder: str | Path) -> tuple[nn.Module, Vocabulary, dict[str, Any]]:
    """(model in eval mode on CPU, item vocabulary, ``{"name", "config"}``) from a model folder."""
    folder = Path(folder)
    for part in (WEIGHTS, CONFIG, ITEMS):
        if not (folder / part).is_file():
            raise FileNotFoundError(f"{folder} is not a saved model: {part} is missing")
    spec = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    model = models.build_model(spec["name"], **spec["config"])
    load_model(model, str(folder / WEIGHTS), device="cpu")
    raw = json.loads((folder / ITEMS).read_text(encoding="utf-8"))
    model.eval()
    return model, Vocabulary(np.array(raw, dtype=str), offset=1), spec
