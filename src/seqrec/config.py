"""The typed, immutable run configuration: YAML in, frozen dataclasses out, YAML back.

A config has five sections: ``data``, ``model``, ``training``, ``evaluation``, ``output``. Unknown
keys anywhere are errors that name the key and list the valid ones; values are checked against the
field types. ``model`` holds ``name`` plus that model's own config fields, checked against the
model's config dataclass (data-derived fields such as ``n_items`` are filled in at build time).

Overrides use dotted keys, ``training.lr=0.001``, with the value parsed as a YAML scalar. The
resolved config (every default filled in) is what ``save_config`` writes, and
``load_config(save_config(c)) == c``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

# model config fields that come from the data, not the user
DERIVED_MODEL_FIELDS = ("n_items", "item_feature_spec")


class ConfigError(ValueError):
    """A config that cannot be used: the message names the key and what was expected."""


@dataclass(frozen=True)
class Columns:
    """Source column names of the canonical roles; None keeps the reader's default."""

    user: str | None = None
    item: str | None = None
    timestamp: str | None = None
    rating: str | None = None
    label: str | None = None

    def mapping(self) -> dict[str, str]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class SplitConfig:
    """How to hold out validation and test targets.

    ``leave_one_out``: last item test, second-to-last validation. ``temporal``: global cut-offs
    given as times (``test_time``/``valid_time``) or as shares of interactions
    (``test_quantile``/``valid_quantile``). ``file``: the data's ``column`` says train/valid/test.
    """

    kind: Literal["leave_one_out", "temporal", "file"] = "leave_one_out"
    test_quantile: float | None = None
    valid_quantile: float | None = None
    test_time: float | None = None
    valid_time: float | None = None
    targets: Literal["next", "all"] = "next"
    column: str = "split"

    def __post_init__(self) -> None:
        if self.kind != "temporal":
            return
        if (self.test_quantile is None) == (self.test_time is None):
            raise ConfigError(
                "data.split: a temporal split needs exactly one of test_quantile, test_time"
            )
        if self.valid_quantile is not None and self.valid_time is not None:
            raise ConfigError("data.split: give valid_quantile or valid_time, not both")
        for name in ("test_quantile", "valid_quantile"):
            q = getattr(self, name)
            if q is not None and not 0.0 < q < 1.0:
                raise ConfigError(f"data.split.{name}: expected a share between 0 and 1, got {q}")


@dataclass(frozen=True)
class FeatureConfig:
    """Where item (or user) side features come from; see ``seqrec.data.features``.

    ``path`` None takes the data's own features: a named data set's ``.item`` / ``.user`` file,
    the ``.item`` / ``.user`` file beside an atomic ``.inter`` file, or else the interaction
    file's extra columns named in ``fields`` (each id's first row gives its value). A ``path`` is
    an atomic ``.item`` / ``.user`` file or a CSV / TSV / Parquet side table keyed by
    ``id_column`` (default ``item_id`` / ``user_id``). ``fields`` None loads every field of a
    feature file. ``kinds`` sets a field's kind (token, token_seq, float, float_seq) where the
    file does not (CSV text is token otherwise); list kinds in text are split on ``separator``.
    ``max_tokens`` caps list widths; tokens carried by fewer than ``min_count`` ids share one
    "unknown" code.
    """

    fields: tuple[str, ...] | None = None
    path: str | None = None
    id_column: str | None = None
    kinds: dict[str, Literal["token", "token_seq", "float", "float_seq"]] = field(
        default_factory=dict
    )
    separator: str = " "
    max_tokens: int | None = None
    min_count: int = 1


@dataclass(frozen=True)
class DataConfig:
    """Where the interactions come from and how they are filtered and split."""

    dataset: str  # a named data set (see ``seqrec data fetch``) or a file path
    format: Literal["atomic", "csv", "tsv", "parquet", "txt"] | None = None
    columns: Columns = field(default_factory=Columns)
    min_rating: float | None = None
    min_user_interactions: int = 0
    min_item_interactions: int = 0
    max_len: int | None = None  # keep each user's newest max_len interactions
    split: SplitConfig = field(default_factory=SplitConfig)
    item_features: FeatureConfig = field(default_factory=FeatureConfig)
    user_features: FeatureConfig = field(default_factory=FeatureConfig)


@dataclass(frozen=True)
class ModelConfig:
    """The registered model ``name`` and its own config fields (all of them, once resolved)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation, validation and the training windows.

    ``patience`` counts validations (every ``eval_every`` epochs) without improvement of
    ``early_stopping_metric`` on the validation set. ``window_step`` None gives one window per
    user (the newest ``train_seq_len`` items); a step adds older windows ending every ``step``
    items back. ``dupe_factor`` repeats every window per epoch (masked differently each time).
    """

    epochs: int = 50
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 0
    clip_grad_norm: float | None = 5.0
    seed: int = 42
    eval_every: int = 1
    early_stopping_metric: str = "NDCG@10"
    patience: int = 5
    window_step: int | None = None
    dupe_factor: int = 1
    num_workers: int = 0
    accelerator: str = "auto"
    progress_bar: bool = True
    tensorboard: bool = False

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "eval_every", "patience", "dupe_factor")
        for name in positive:
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"training.{name}: expected a positive integer, got {value}")
        if self.window_step is not None and self.window_step < 1:
            step = self.window_step
            raise ConfigError(f"training.window_step: expected >= 1 or null, got {step}")


@dataclass(frozen=True)
class EvaluationConfig:
    """Protocols and metrics for validation and test.

    ``valid_protocol`` (default: the first of ``protocols``) drives early stopping.
    ``exclude_history`` False turns ``full`` into ``full-keep-history``.
    """

    protocols: tuple[str, ...] = ("full",)
    metrics: tuple[str, ...] = ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR")
    batch_size: int = 256
    exclude_history: bool = True
    valid_protocol: str | None = None


@dataclass(frozen=True)
class OutputConfig:
    """``dir`` None makes ``runs/<model>-<dataset>-<time>`` when the run starts."""

    dir: str | None = None


@dataclass(frozen=True)
class Config:
    data: DataConfig
    model: ModelConfig
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


# ---------------------------------------------------------------- building from plain data


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


_NO_MATCH = object()


def _convert_container(value: Any, tp: Any, origin: Any, where: str) -> Any:
    """Lists/tuples, string-keyed mappings and nested dataclasses; ``_NO_MATCH`` otherwise."""
    if origin is dict and isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        item = typing.get_args(tp)[1]
        return {k: _convert(v, item, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple and isinstance(value, list | tuple):
        item = typing.get_args(tp)[0]
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    return _NO_MATCH


def _convert(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked against the annotation ``tp`` (ints are accepted for floats)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _convert(value, option, where)
            except ConfigError:
                continue
    elif origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin in (dict, tuple) or dataclasses.is_dataclass(tp):
        converted = _convert_container(value, tp, origin, where)
        if converted is not _NO_MATCH:
            return converted
    elif tp is Any or (tp is type(None) and value is None):
        return value
    elif tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif tp in (int, str, bool) and type(value) is tp:
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _build(cls: type, raw: Any, where: str) -> Any:
    """A dataclass from a mapping; an unknown or missing key is an error naming it."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}'; valid keys: {', '.join(fields)}"
        )
    values = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where else name
        if name in raw:
            values[name] = _convert(raw[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing config key '{key}'")
    return cls(**values)


def _model_config(raw: Any) -> ModelConfig:
    """``name`` plus the model's fields, checked against and completed from its config class."""
    from seqrec import models  # models import torch: only when a config is built

    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise ConfigError("model: expected a mapping with a 'name' (the registered model)")
    params = {k: v for k, v in raw.items() if k != "name"}
    if raw["name"] not in models.MODELS:
        known = ", ".join(sorted(models.MODELS))
        raise ConfigError(f"model.name: unknown model {raw['name']!r}; registered: {known}")
    cls = models.MODELS[raw["name"]][1]
    settable = {f.name: f for f in dataclasses.fields(cls) if f.name not in DERIVED_MODEL_FIELDS}
    unknown = sorted(set(params) - set(settable))
    if unknown:
        raise ConfigError(
            f"unknown config key 'model.{unknown[0]}' for model {raw['name']!r}; "
            f"valid keys: {', '.join(['name', *settable])}"
        )
    hints = typing.get_type_hints(cls)
    resolved = {}
    for name, f in settable.items():
        if name in params:
            resolved[name] = _convert(params[name], hints[name], f"model.{name}")
        elif f.default is not dataclasses.MISSING:
            resolved[name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            resolved[name] = f.default_factory()
        else:
            raise ConfigError(f"missing config key 'model.{name}' for model {raw['name']!r}")
    return ModelConfig(raw["name"], tuple(resolved.items()))


def config_from_dict(raw: Mapping[str, Any]) -> Config:
    """A checked ``Config`` from plain data (as read from YAML)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config: expected a mapping of sections, got {type(raw).__name__}")
    sections = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(raw) - sections)
    if unknown:
        raise ConfigError(f"unknown config key '{unknown[0]}'; valid keys: {', '.join(sections)}")
    if "model" not in raw:
        raise ConfigError("missing config key 'model'")
    hints = typing.get_type_hints(Config)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Config):
        if f.name == "model":
            continue
        if f.name in raw:
            values[f.name] = _build(hints[f.name], raw[f.name] or {}, f.name)
        elif f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing config key '{f.name}'")
    values["model"] = _model_config(raw["model"])  # last: it imports the model registry
    return Config(**values)


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain data for YAML: tuples become lists, the model's params sit beside its name."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, ModelConfig):
            out[f.name] = {"name": value.name, **{k: _plain(v) for k, v in value.params}}
        else:
            out[f.name] = _plain(dataclasses.asdict(value))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- files and overrides


def parse_override(text: str) -> tuple[str, Any]:
    """``a.b=c`` -> ("a.b", c) with ``c`` parsed as a YAML scalar (``1e-3`` is a float)."""
    key, sep, value = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: expected key.path=value, e.g. training.lr=0.001")
    parsed = yaml.safe_load(value) if value.strip() else None
    if isinstance(parsed, str):
        parsed = _number_or_text(parsed)
    return key, parsed


def _number_or_text(text: str) -> Any:
    # YAML 1.1 reads 1e-3 as a string (it wants 1.0e-3); users mean the number
    try:
        return float(text) if any(c in text for c in ".eE") else text
    except ValueError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of ``raw`` with each dotted key set; intermediate mappings are created as needed."""
    out = _plain_copy(raw)
    for key, value in overrides:
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {key!r}: '{part}' is a value, not a section")
            node = child
        node[parts[-1]] = value
    return out


def _plain_copy(raw: Any) -> Any:
    if isinstance(raw, Mapping):
        return {k: _plain_copy(v) for k, v in raw.items()}
    return raw


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such config file: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data, model, ...)")
    return raw


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read a YAML config, apply ``a.b=c`` overrides and check everything."""
    raw = apply_overrides(read_yaml(path), [parse_override(o) for o in overrides])
    try:
        return config_from_dict(raw)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error


def save_config(config: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML (readable back with ``load_config``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False, default_flow_style=False)
    path.write_text(text, encoding="utf-8")
    return path
