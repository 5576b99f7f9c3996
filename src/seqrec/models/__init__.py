"""Registry of models: name -> (model class, config dataclass), and ``build_model``.

A model is rebuilt from its name and ``dataclasses.asdict(model.config)`` (plain JSON), then its
weights are loaded from safetensors; nothing is unpickled.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from torch import nn

from seqrec.models.bert4rec import BERT4Rec, BERT4RecConfig
from seqrec.models.dien import DIEN, DIENConfig
from seqrec.models.din import DIN, DINConfig
from seqrec.models.gru4rec import GRU4Rec, GRU4RecConfig
from seqrec.models.gru4recf import GRU4RecF, GRU4RecFConfig
from seqrec.models.pop import Pop, PopConfig
from seqrec.models.protocol import SequentialRecommender
from seqrec.models.sasrec import SASRec, SASRecConfig

MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "bert4rec": (BERT4Rec, BERT4RecConfig),
    "dien": (DIEN, DIENConfig),
    "din": (DIN, DINConfig),
    "sasrec": (SASRec, SASRecConfig),
    "pop": (Pop, PopConfig),
    "gru4rec": (GRU4Rec, GRU4RecConfig),
    "gru4recf": (GRU4RecF, GRU4RecFConfig),
}


def build_config(name: str, **config: Any) -> Any:
    """Config dataclass of model ``name``; an unknown name or key is an error listing valid ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(sorted(MODELS))}")
    config_class = MODELS[name][1]
    known = [f.name for f in fields(config_class)]
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {', '.join(unknown)} for model {name!r}; "
            f"valid: {', '.join(known)}"
        )
    missing = [
        f.name
        for f in fields(config_class)
        if f.default is MISSING and f.default_factory is MISSING and f.name not in config
    ]
    if missing:
        raise ValueError(f"model {name!r} needs config key(s) {', '.join(missing)}")
    return config_class(**config)


def build_model(name: str, **config: Any) -> nn.Module:
    """Model ``name`` built from config keys, e.g. ``build_model("sasrec", n_items=1682)``."""
    model_config = build_config(name, **config)
    return MODELS[name][0](model_config)


__all__ = [
    "DIEN",
    "DIN",
    "MODELS",
    "BERT4Rec",
    "BERT4RecConfig",
    "DIENConfig",
    "DINConfig",
    "GRU4Rec",
    "GRU4RecConfig",
    "GRU4RecF",
    "GRU4RecFConfig",
    "Pop",
    "PopConfig",
    "SASRec",
    "SASRecConfig",
    "SequentialRecommender",
    "build_config",
    "build_model",
]
