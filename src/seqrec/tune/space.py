"""Search spaces for ``seqrec tune``: one YAML mapping of dotted config keys to distributions.

::

    training.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    model.hidden_dropout: {type: float, low: 0.0, high: 0.5}
    model.n_layers: {type: int, low: 1, high: 3}
    training.window_step: {type: categorical, choices: [10, 25, 50, null]}

Only ``model.*`` and ``training.*`` keys can be searched: the data, split and evaluation stay the
preset's, so every trial's validation value is measured on the same users and candidates. The
seed, the seeds and the early-stopping metric are fixed as well. A model's default space is
``configs/spaces/<model>.yaml`` in the current folder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqrec.config import ConfigError, read_yaml

SPACES_DIR = Path("configs") / "spaces"
SEARCHABLE = ("model", "training")
FIXED = ("training.seed", "training.seeds", "training.early_stopping_metric", "model.name")
KINDS = {
    "float": ("low", "high", "log", "step"),
    "int": ("low", "high", "log", "step"),
    "categorical": ("choices",),
}


@dataclass(frozen=True)
class Param:
    """One searched config key and its distribution."""

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial samples for this key."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            step = int(self.step or 1)
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=step,
                                     log=self.log)  # fmt: skip
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def first(self) -> Any:
        """A value of the distribution (its first choice or its low end), to check the key."""
        if self.kind == "categorical":
            return self.choices[0]
        return int(self.low) if self.kind == "int" else self.low

    def contains(self, value: Any) -> bool:
        """Whether ``value`` (e.g. the preset's) is a point of this distribution."""
        if self.kind == "categorical":
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int" and not float(value).is_integer():
            return False
        return self.low <= value <= self.high


@dataclass(frozen=True)
class SearchSpace:
    path: Path
    params: tuple[Param, ...]

    def suggest(self, trial: Any) -> dict[str, Any]:
        """``{"training.lr": 0.0013, ...}``: the overrides of one trial."""
        return {p.key: p.suggest(trial) for p in self.params}


def default_space_path(model: str) -> Path:
    path = SPACES_DIR / f"{model}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))
        listed = ", ".join(known) if known else f"none: {SPACES_DIR} is missing here"
        raise ConfigError(
            f"no default search space for model {model!r} at {path} (spaces: {listed}); "
            "give one with --space SPACE.yaml"
        )
    return path


def load_space(path: str | Path) -> SearchSpace:
    """Read and check a space file; every error names the file and the key."""
    path = Path(path)
    raw = read_yaml(path)
    if not raw:
        raise ConfigError(f"{path}: the search space is empty")
    return SearchSpace(path, tuple(_param(path, key, spec) for key, spec in raw.items()))


def _param(path: Path, key: Any, spec: Any) -> Param:
    where = f"{path}: {key}"
    if not isinstance(key, str) or key.split(".")[0] not in SEARCHABLE or "." not in key:
        raise ConfigError(
            f"{where}: only model.* and training.* keys can be searched (data and evaluation "
            "stay the preset's, so that every trial is measured on the same users)"
        )
    if key in FIXED:
        raise ConfigError(f"{where}: {key} is fixed during a search")
    if not isinstance(spec, Mapping) or spec.get("type") not in KINDS:
        raise ConfigError(f"{where}: expected {{type: float | int | categorical, ...}}")
    kind = spec["type"]
    unknown = sorted(set(spec) - {"type", *KINDS[kind]})
    if unknown:
        raise ConfigError(
            f"{where}: unknown key '{unknown[0]}' for type {kind}; valid: {', '.join(KINDS[kind])}"
        )
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: choices: expected a non-empty list")
        return Param(key, kind, choices=tuple(choices))
    return _numeric(where, key, kind, spec)


def _numeric(where: str, key: str, kind: str, spec: Mapping[str, Any]) -> Param:
    bounds = []
    for name in ("low", "high"):
        value = spec.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise ConfigError(f"{where}: {name}: expected a number, got {value!r}")
        if kind == "int" and not float(value).is_integer():
            raise ConfigError(f"{where}: {name}: expected an integer, got {value!r}")
        bounds.append(value)
    low, high = bounds
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log: expected true or false, got {log!r}")
    if low >= high:
        raise ConfigError(f"{where}: low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0, got {low}")
    step = spec.get("step")
    if step is not None and (not isinstance(step, int | float) or step <= 0 or log):
        raise ConfigError(f"{where}: step: expected a positive number, and no log scale")
    return Param(key, kind, float(low), float(high), log, step)
