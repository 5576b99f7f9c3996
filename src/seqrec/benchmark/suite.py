"""Benchmark suites: several models on one shared data split, evaluation and set of seeds.

A suite is a YAML file, ``benchmarks/suites/<name>.yaml``::

    description: every model on MovieLens-100K, leave-one-out, full ranking
    data: {dataset: ml-100k, split: {kind: leave_one_out}}    # replaces each preset's data
    evaluation: {protocols: [full, popular100], ...}          # replaces each preset's evaluation
    seeds: [1, 2, 3]                                          # training.seeds of every entry
    metric: NDCG@10      # the headline: early stopping, best model, bars, significance
    protocol: full       # the headline protocol (default: the first of evaluation.protocols)
    quick: {training.epochs: 3}       # overrides of every entry for ``--quick``
    models:
      - name: sasrec-bce                       # the label (and the run folder's name)
        config: configs/sasrec-ml-100k.yaml    # a preset, relative to the current folder
        overrides: {model.loss: bce}           # dotted keys of model.* and training.*
        quick: {training.epochs: 2}            # optional, after the suite's quick block

Every entry gets the suite's ``data`` and ``evaluation`` sections whole, so all models see the same
split, users, protocols and sampled negatives; an entry may not override them. An entry whose
preset or model does not exist is an error naming the entry, before anything is trained.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from seqrec.config import Config, ConfigError, apply_overrides, config_from_dict, read_yaml

SUITES_DIR = Path("benchmarks") / "suites"
RESULTS_DIR = Path("benchmarks") / "results"
SUITE_KEYS = ("description", "data", "evaluation", "seeds", "metric", "protocol", "quick", "models")
ENTRY_KEYS = ("name", "config", "overrides", "quick")
SHARED = ("data", "evaluation")
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

Overrides = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Entry:
    """One model of a suite: a preset config and the overrides that make this variant."""

    name: str
    config: Path
    overrides: Overrides = ()
    quick: Overrides = ()


@dataclass(frozen=True)
class Suite:
    """A parsed suite file; ``config_of`` gives each entry's full training config."""

    name: str
    path: Path
    description: str
    data: dict[str, Any]
    evaluation: dict[str, Any]
    seeds: tuple[int, ...]
    metric: str
    protocol: str
    quick: Overrides
    entries: tuple[Entry, ...]

    def entry(self, name: str) -> Entry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        known = ", ".join(e.name for e in self.entries)
        raise ConfigError(f"{self.path}: no model {name!r} in the suite; its models: {known}")

    def config_of(self, entry: Entry, quick: bool, run_dir: Path | str) -> Config:
        """The preset with the shared sections, the seeds, the entry's (and quick) overrides."""
        raw = read_yaml(entry.config)
        raw.update({"data": self.data, "evaluation": self.evaluation})
        pairs = [
            ("training.seeds", list(self.seeds)),
            ("training.early_stopping_metric", self.metric),
            *entry.overrides,
            *((*self.quick, *entry.quick) if quick else ()),
            ("output.dir", str(run_dir)),
        ]
        try:
            return config_from_dict(apply_overrides(raw, pairs))
        except ConfigError as error:
            where = f"{self.path}: model {entry.name!r} ({entry.config})"
            raise ConfigError(f"{where}: {error}") from None


def find_suite(name_or_path: str | Path) -> Path:
    """A suite file: a path, or a name in ``benchmarks/suites/`` of the current folder."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"no such suite file: {path}")
        return path
    candidate = SUITES_DIR / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))
    listed = ", ".join(known) if known else f"none: {SUITES_DIR} is missing or empty here"
    raise ConfigError(f"no suite named {name_or_path!r} in {SUITES_DIR}; known: {listed}")


def load_suite(name_or_path: str | Path, check: bool = True) -> Suite:
    """Read and check a suite; with ``check`` every entry's config is resolved once up front."""
    path = find_suite(name_or_path)
    raw = read_yaml(path)
    _known_keys(raw, SUITE_KEYS, str(path))
    for key in ("data", "evaluation", "models"):
        if key not in raw:
            raise ConfigError(f"{path}: missing key '{key}'")
    evaluation = _mapping(raw["evaluation"], f"{path}: evaluation")
    suite = Suite(
        name=path.stem,
        path=path,
        description=str(raw.get("description", "")),
        data=_mapping(raw["data"], f"{path}: data"),
        evaluation=evaluation,
        seeds=_seeds(raw.get("seeds", [1, 2, 3]), path),
        metric=str(raw.get("metric", "NDCG@10")),
        protocol=str(raw.get("protocol") or _first_protocol(evaluation, path)),
        quick=_overrides(raw.get("quick"), f"{path}: quick"),
        entries=_entries(raw["models"], path),
    )
    if check:
        for entry in suite.entries:
            _check_entry(suite, entry)
    return suite


def _check_entry(suite: Suite, entry: Entry) -> None:
    if not entry.config.is_file():
        raise ConfigError(f"{suite.path}: model {entry.name!r}: no such config file {entry.config}")
    for quick in (False, True):
        config = suite.config_of(entry, quick, RESULTS_DIR)
        ev = config.evaluation
        if suite.metric not in ev.metrics:
            raise ConfigError(
                f"{suite.path}: metric {suite.metric!r} is not in evaluation.metrics "
                f"({', '.join(ev.metrics)})"
            )
        if suite.protocol not in ev.protocols:
            raise ConfigError(
                f"{suite.path}: protocol {suite.protocol!r} is not in evaluation.protocols "
                f"({', '.join(ev.protocols)})"
            )


def _first_protocol(evaluation: Mapping[str, Any], path: Path) -> str:
    protocols = evaluation.get("protocols")
    if not isinstance(protocols, list) or not protocols:
        raise ConfigError(f"{path}: evaluation.protocols: expected a list of protocol names")
    return str(protocols[0])


def _entries(raw: Any, path: Path) -> tuple[Entry, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: models: expected a list of {{name, config, overrides}}")
    entries, seen = [], set()
    for i, item in enumerate(raw):
        where = f"{path}: models[{i}]"
        item = _mapping(item, where)
        _known_keys(item, ENTRY_KEYS, where)
        for key in ("name", "config"):
            if not isinstance(item.get(key), str):
                raise ConfigError(f"{where}: missing key '{key}' (expected a string)")
        name = item["name"]
        if not LABEL.match(name):
            raise ConfigError(f"{where}.name: {name!r} is not a folder name (letters, digits, ._-)")
        if name in seen:
            raise ConfigError(f"{where}.name: {name!r} appears twice")
        seen.add(name)
        entries.append(
            Entry(
                name,
                Path(item["config"]),
                _overrides(item.get("overrides"), f"{where}.overrides"),
                _overrides(item.get("quick"), f"{where}.quick"),
            )
        )
    return tuple(entries)


def _overrides(raw: Any, where: str) -> Overrides:
    """Dotted ``{a.b: value}`` pairs; the shared sections are the suite's, not an entry's."""
    if raw is None:
        return ()
    pairs = _mapping(raw, where)
    for key in pairs:
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ConfigError(f"{where}: {key!r} is not a dotted config key such as training.lr")
        section = key.split(".")[0]
        if section in (*SHARED, "output"):
            raise ConfigError(
                f"{where}: {key!r} is shared by every model of the suite; "
                f"set it in the suite's {section} section instead"
            )
    return tuple(pairs.items())


def _seeds(raw: Any, path: Path) -> tuple[int, ...]:
    if not isinstance(raw, list) or not raw or not all(type(s) is int for s in raw):
        raise ConfigError(f"{path}: seeds: expected a list of integers, got {raw!r}")
    return tuple(raw)


def _mapping(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {yaml.safe_dump(raw).strip()!r}")
    return dict(raw)


def _known_keys(raw: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}'; valid keys: {', '.join(known)}")
