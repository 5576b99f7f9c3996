"""Small models of every registered name, for the serving tests (new models join on their own).

A model is built from ``SMALL`` (the keys its config has) and, when its config has a field typed
``Literal[...]`` named ``architecture``, once per architecture. Models that keep statistics of the
training data get them from ``training_items()``, where item ``i`` occurs ``i`` times, so counts
(popularity) have no ties. A model whose config needs data that ``SMALL`` cannot give gets a
factory in ``FACTORIES``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable

import numpy as np
import torch

from seqrec.data.corpus import Sequences
from seqrec.models import MODELS, build_model

N_ITEMS = 30
MAX_LEN = 8
SMALL = {
    "n_items": N_ITEMS, "max_len": MAX_LEN, "hidden_size": 16, "embedding_size": 16,
    "n_layers": 2, "n_heads": 2, "inner_size": 32, "feature_size": 8,
}  # fmt: skip


def training_items() -> Sequences:
    """One training row per item code i holding i copies of i: distinct counts 1..N_ITEMS."""
    items = np.repeat(np.arange(1, N_ITEMS + 1), np.arange(1, N_ITEMS + 1))
    offsets = np.concatenate([[0], np.cumsum(np.arange(1, N_ITEMS + 1))])
    return Sequences(offsets.astype(np.int64), items.astype(np.int64))


def _gru4recf(config: dict) -> torch.nn.Module:
    """GRU4RecF needs item feature tables; they live in buffers, filled from a small table."""
    import importlib

    import polars as pl

    from seqrec.data.corpus import Vocabulary
    from seqrec.data.features import build_feature_table

    load_item_tables = importlib.import_module("seqrec.nn.features").load_item_tables

    ids = [str(i) for i in range(1, N_ITEMS + 1)]
    frame = pl.DataFrame({"id": ids, "genre": [f"g{i % 4}" for i in range(N_ITEMS)]})
    table = build_feature_table(frame, Vocabulary(np.array(ids), offset=1))
    model = build_model("gru4recf", **config, item_feature_spec=table.spec())
    load_item_tables(model, table)
    return model


FACTORIES: dict[str, Callable[[dict], torch.nn.Module]] = {"gru4recf": _gru4recf}


def _variants(name: str) -> list[dict]:
    config_class = MODELS[name][1]
    for f in dataclasses.fields(config_class):
        if f.name == "architecture":
            hint = typing.get_type_hints(config_class)[f.name]
            return [{"architecture": a} for a in typing.get_args(hint)]
    return [{}]


CASES = [(name, variant) for name in MODELS for variant in _variants(name)]
CASE_IDS = [f"{name}-{'-'.join(map(str, v.values()))}".rstrip("-") for name, v in CASES]


def small_model(name: str, variant: dict | None = None) -> torch.nn.Module:
    """A small model of ``name`` in eval mode, seeded, with its training statistics filled."""
    torch.manual_seed(0)
    known = {f.name for f in dataclasses.fields(MODELS[name][1])}
    config = {k: v for k, v in SMALL.items() if k in known} | (variant or {})
    model = FACTORIES[name](config) if name in FACTORIES else build_model(name, **config)
    prepare = getattr(model, "prepare_from_training", None)
    if prepare is not None:
        prepare(training_items())
    return model.eval()


def item_ids() -> list[str]:
    """Raw ids of codes 1..N_ITEMS: strings unlike the codes, so a mix-up shows."""
    return [f"i{code * 7}" for code in range(1, N_ITEMS + 1)]
