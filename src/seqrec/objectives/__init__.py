"""Masking objectives (causal, masked, permutation, replacement) usable with any fitting encoder."""

from __future__ import annotations

import inspect
from typing import Any

from seqrec.objectives.base import (
    ATTENTION_KINDS,
    ItemScorer,
    MaskingInfo,
    MaskingObjective,
    SequenceEncoder,
)
from seqrec.objectives.clm import CausalLanguageModeling
from seqrec.objectives.mlm import MaskedLanguageModeling
from seqrec.objectives.plm import PermutationLanguageModeling
from seqrec.objectives.rtd import ReplacementLanguageModeling

OBJECTIVES: dict[str, type[MaskingObjective]] = {
    cls.name: cls
    for cls in (
        CausalLanguageModeling,
        MaskedLanguageModeling,
        PermutationLanguageModeling,
        ReplacementLanguageModeling,
    )
}


def objectives_for(supported_attention: frozenset[str]) -> tuple[str, ...]:
    """Names of the objectives an encoder supporting these attention kinds can train with."""
    return tuple(name for name, cls in OBJECTIVES.items() if cls.attention in supported_attention)


def objective_parameters(name: str) -> tuple[str, ...]:
    """The parameters objective ``name`` takes besides ``n_items`` and ``hidden_size``."""
    signature = inspect.signature(OBJECTIVES[name].__init__)
    return tuple(p for p in signature.parameters if p not in ("self", "n_items", "hidden_size"))


def build_objective(
    name: str,
    *,
    n_items: int,
    hidden_size: int,
    model_name: str,
    supported_attention: frozenset[str],
    **params: Any,
) -> MaskingObjective:
    """Objective ``name`` for a model's encoder; a wrong name, kind or parameter is an error."""
    if name not in OBJECTIVES:
        raise ValueError(
            f"unknown objective {name!r} for {model_name}; valid: "
            f"{', '.join(objectives_for(supported_attention))}"
        )
    cls = OBJECTIVES[name]
    cls.check_compatible(model_name, supported_attention)
    valid = objective_parameters(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for objective {name!r} of "
            f"{model_name}; valid: {', '.join(valid)}"
        )
    return cls(n_items=n_items, hidden_size=hidden_size, **params)


__all__ = [
    "ATTENTION_KINDS",
    "OBJECTIVES",
    "CausalLanguageModeling",
    "ItemScorer",
    "MaskedLanguageModeling",
    "MaskingInfo",
    "MaskingObjective",
    "PermutationLanguageModeling",
    "ReplacementLanguageModeling",
    "SequenceEncoder",
    "build_objective",
    "objective_parameters",
    "objectives_for",
]
