"""What a model takes from the data rather than from the user (``config.DERIVED_MODEL_FIELDS``).

``derived_fields`` gives the config values: ``n_items``, ``n_users`` for models with that field
(a user embedding) and, for models with an ``item_feature_spec`` (``user_feature_spec``) field,
the kinds and sizes of the data's item (user) features (empty without features). ``attach_data``
fills what does not fit in a JSON config, once the model is built: the feature tables (buffers,
saved with the weights)
and, through the model's ``prepare_from_training(train)`` hook, statistics of the training split
(e.g. the counts of a popularity sampler). A saved model then needs no data files to be rebuilt
and used.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from torch import nn

from seqrec import models
from seqrec.nn.features import load_item_tables, load_user_tables
from seqrec.training.prepare import PreparedData


def derived_fields(model_name: str, data: PreparedData) -> dict[str, Any]:
    """The data-derived config fields that model ``model_name``'s config has."""
    names = {f.name for f in fields(models.MODELS[model_name][1])}
    derived: dict[str, Any] = {"n_items": data.corpus.n_items}
    if "n_users" in names:
        derived["n_users"] = data.corpus.n_users
    if "item_feature_spec" in names:
        table = data.item_features
        derived["item_feature_spec"] = [] if table is None else list(table.spec())
    if "user_feature_spec" in names:
        table = data.user_features
        derived["user_feature_spec"] = [] if table is None else list(table.spec())
    return derived


def attach_data(model: nn.Module, data: PreparedData) -> None:
    """Load the item and user feature tables into the model and let it read the training split."""
    if data.item_features is not None:
        load_item_tables(model, data.item_features)
    if data.user_features is not None:
        load_user_tables(model, data.user_features)
    prepare = getattr(model, "prepare_from_training", None)
    if callable(prepare):
        prepare(data.split.train)
