"""Evaluation protocols: which candidates each test item is ranked against.

- ``FullRanking``: every item of the catalogue. By default the user's history (the evaluation
  context) is removed from the candidates, as users are not recommended what they already have;
  ``exclude_history=False`` keeps it, for repeat-consumption data (and to match RecBole's
  sequential full-sort).
- ``SampledRanking``: the target against ``n_negatives`` items the user never interacted with,
  drawn uniformly or by popularity (interaction counts over the whole corpus, as in the BERT4Rec
  authors' code). The sample is seeded and cached, so every model compared sees the same one.
- ``LabelledImpressions`` (``labelled``): no candidates drawn; every held-out interaction is one
  impression, shown to the model with the user's evaluation context and scored against its
  click label from the data (``data.click_labels``). Only the click-through metrics (AUC, GAUC,
  LogLoss) apply. With ``leave_one_out`` every user has one impression, so GAUC needs a split
  that holds out several per user (``temporal`` with ``targets: all``).

Sampled and full-ranking figures are not comparable; the protocol's name goes with every figure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class FullRanking:
    exclude_history: bool = True

    @property
    def name(self) -> str:
        return "full" if self.exclude_history else "full-keep-history"


@dataclass(frozen=True)
class SampledRanking:
    n_negatives: int = 100
    sampler: str = "uniform"  # "uniform" | "popular"
    seed: int = 12345

    def __post_init__(self) -> None:
        if self.sampler not in ("uniform", "popular"):
            raise ValueError(f"sampler must be 'uniform' or 'popular', got {self.sampler!r}")
        if self.n_negatives < 1:
            raise ValueError(f"n_negatives must be positive, got {self.n_negatives}")

    @property
    def name(self) -> str:
        return f"{self.sampler}{self.n_negatives}"


@dataclass(frozen=True)
class LabelledImpressions:
    @property
    def name(self) -> str:
        return "labelled"


Protocol = FullRanking | SampledRanking | LabelledImpressions

_SAMPLED = re.compile(r"^(uniform|popular)(\d+)$")
PROTOCOL_NAMES = ("full", "full-keep-history", "uniform<N>", "popular<N>", "labelled")


def parse_protocol(name: str, seed: int = 12345) -> Protocol:
    """'full', 'full-keep-history', 'uniform100', 'popular100' (any N), 'labelled' -> a
    protocol."""
    key = name.strip().lower()
    if key == "full":
        return FullRanking()
    if key == "full-keep-history":
        return FullRanking(exclude_history=False)
    if key == "labelled":
        return LabelledImpressions()
    match = _SAMPLED.match(key)
    if match:
        return SampledRanking(int(match.group(2)), match.group(1), seed)
    raise ValueError(f"unknown protocol {name!r}; expected one of {', '.join(PROTOCOL_NAMES)}")
